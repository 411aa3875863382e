"""OutputService's own table: one report per (workflow, node id, attempt).

Reports are kept as the proto3 JSON of ReportStepOutputsRequest, so the row
is readable with the sqlite3 shell and survives new optional proto fields.
"""

from __future__ import annotations

import sqlite3
import time

from google.protobuf import json_format

from treadle.errors import FailedPrecondition, NotFound
from treadle.outputs.v1.outputs_pb2 import ReportStepOutputsRequest
from treadle.store.sqlite import group_commit, migrate

SCHEMA = [
    """
    CREATE TABLE outputs_reports (
        workflow TEXT NOT NULL,
        node_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        report TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (workflow, node_id, attempt)
    )
    """,
]

LATEST_ATTEMPT = -1


class OutputRepository:
    """Stores step reports. Calls are synchronous: the connection is shared by the services of one process.

    record() commits in `group.write()`: a caller inside `group.deferring()` makes it durable with
    `await group.sync()` (treadle.store.durability)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.group = group_commit(conn)
        migrate(conn, "outputs", SCHEMA)

    def record(self, report: ReportStepOutputsRequest) -> bool:
        """Store report; False when an identical one is stored already.

        A different report for the same attempt is a conflict: an attempt has
        exactly one outcome.
        """
        with self.group.write():
            cursor = self._conn.execute(
                "INSERT INTO outputs_reports(workflow, node_id, attempt, report, recorded_at) VALUES(?, ?, ?, ?, ?) "
                "ON CONFLICT(workflow, node_id, attempt) DO NOTHING",
                (report.workflow, report.node_id, report.attempt, _to_json(report), time.time()),
            )
        if cursor.rowcount == 1:
            return True
        stored = self.get(report.workflow, report.node_id, report.attempt)
        if stored != report:
            raise FailedPrecondition(
                f"attempt {report.attempt} of {report.workflow}/{report.node_id} was already reported differently",
                subject=f"{report.workflow}/{report.node_id}/{report.attempt}",
                type="REPORT_CONFLICT",
            )
        return False

    def get(self, workflow: str, node_id: str, attempt: int = LATEST_ATTEMPT) -> ReportStepOutputsRequest:
        if attempt == LATEST_ATTEMPT:
            row = self._conn.execute(
                "SELECT report FROM outputs_reports WHERE workflow = ? AND node_id = ? ORDER BY attempt DESC LIMIT 1",
                (workflow, node_id),
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT report FROM outputs_reports WHERE workflow = ? AND node_id = ? AND attempt = ?",
                (workflow, node_id, attempt),
            ).fetchone()
        if row is None:
            which = "latest attempt" if attempt == LATEST_ATTEMPT else f"attempt {attempt}"
            raise NotFound("step outputs", f"{workflow}/{node_id} ({which})")
        return _from_json(row[0])

    def delete_workflow(self, workflow: str) -> int:
        """Delete every report of workflow; how many there were."""
        return self._conn.execute("DELETE FROM outputs_reports WHERE workflow = ?", (workflow,)).rowcount


def _to_json(report: ReportStepOutputsRequest) -> str:
    return json_format.MessageToJson(report, indent=None, sort_keys=True)


def _from_json(text: str) -> ReportStepOutputsRequest:
    return json_format.Parse(text, ReportStepOutputsRequest(), ignore_unknown_fields=True)
