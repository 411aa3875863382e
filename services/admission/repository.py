"""AdmissionService's own tables: the workflow records and the request ids of past deletions."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from treadle.errors import AlreadyExists, NotFound
from treadle.store.sqlite import group_commit, migrate, transaction

SCHEMA = [
    """
    CREATE TABLE admission_workflows (
        name TEXT PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        namespace TEXT NOT NULL,
        generate_name TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        created_at_ns INTEGER NOT NULL,
        spec TEXT NOT NULL,
        request_id TEXT UNIQUE,
        handed_off INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX admission_workflows_by_creation ON admission_workflows(created_at_ns, name)",
    "CREATE INDEX admission_workflows_not_handed_off ON admission_workflows(created_at_ns) WHERE handed_off = 0",
    """
    CREATE TABLE admission_deletions (
        request_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        deleted_at REAL NOT NULL
    )
    """,
    # The request ids of lifecycle calls (suspend, resume, stop, ...) that took effect.
    """
    CREATE TABLE admission_requests (
        request_id TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    )
    """,
]

_COLUMNS = "name, uid, namespace, generate_name, labels, annotations, created_at_ns, spec, request_id, handed_off"

# Where a page of the newest-first listing resumes: the last record's (created_at_ns, name).
PageCursor = tuple[int, str]


@dataclass(frozen=True)
class WorkflowRecord:
    """What admission knows about a workflow. Its status belongs to the scheduler."""

    name: str
    uid: str
    namespace: str
    generate_name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    created_at_ns: int
    # The Argo-shaped spec dict, arguments applied.
    spec: dict[str, Any]
    request_id: str = ""
    handed_off: bool = False

    @property
    def cursor(self) -> PageCursor:
        """Where a newest-first listing resumes after this record."""
        return self.created_at_ns, self.name


class AdmissionRepository:
    """Workflow records. Calls are synchronous: the connection is shared by the services of one process.

    insert and mark_handed_off commit in `group.write()`: inside `group.deferring()` they skip their
    fsync, and the caller makes them durable with `await group.sync()` (treadle.store.durability).
    mark_handed_off_batched shares one deferred transaction with the other marks of the same turn
    of the event loop.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.group = group_commit(conn)
        migrate(conn, "admission", SCHEMA)

    def insert(self, record: WorkflowRecord) -> WorkflowRecord:
        """Store a new record; return the stored one.

        A record created earlier with the same request_id wins over this one (the request_id
        column is unique, so the insert fails and the earlier record is read back).
        """
        try:
            with self.group.write():
                self._conn.execute(
                    f"INSERT INTO admission_workflows({_COLUMNS}) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.name,
                        record.uid,
                        record.namespace,
                        record.generate_name,
                        json.dumps(record.labels, sort_keys=True),
                        json.dumps(record.annotations, sort_keys=True),
                        record.created_at_ns,
                        json.dumps(record.spec, sort_keys=True),
                        record.request_id or None,
                        int(record.handed_off),
                    ),
                )
        except sqlite3.IntegrityError:
            earlier = self.find_by_request_id(record.request_id) if record.request_id else None
            if earlier is not None:
                return earlier
            raise AlreadyExists("workflow", record.name) from None
        return record

    def get(self, name: str) -> WorkflowRecord:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM admission_workflows WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound("workflow", name)
        return _record(row)

    def exists(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM admission_workflows WHERE name = ?", (name,)).fetchone() is not None

    def find_by_request_id(self, request_id: str) -> WorkflowRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM admission_workflows WHERE request_id = ?", (request_id,)
        ).fetchone()
        return _record(row) if row is not None else None

    def page(self, limit: int, after: PageCursor | None = None, *, name_prefix: str = "") -> list[WorkflowRecord]:
        """Up to limit records, newest first, starting after the cursor; only names starting with name_prefix."""
        conditions: list[str] = []
        args: list[Any] = []
        if after is not None:
            conditions.append("(created_at_ns < ? OR (created_at_ns = ? AND name < ?))")
            args += [after[0], after[0], after[1]]
        if name_prefix:
            conditions.append("substr(name, 1, ?) = ?")
            args += [len(name_prefix), name_prefix]
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM admission_workflows {where}ORDER BY created_at_ns DESC, name DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_record(row) for row in rows]

    def not_handed_off(self, limit: int = 1000) -> list[WorkflowRecord]:
        """Records still waiting for the scheduler, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM admission_workflows WHERE handed_off = 0 ORDER BY created_at_ns LIMIT ?",
            (limit,),
        ).fetchall()
        return [_record(row) for row in rows]

    async def mark_handed_off_batched(self, name: str, uid: str) -> bool:
        """mark_handed_off, in one transaction with the other marks of this turn of the event loop.

        Its commit is deferred (treadle.store.durability): a mark lost to a power failure only
        makes the reconciler hand the workflow off again, which the scheduler takes as done.
        """
        return await self.group.batched(lambda: self.mark_handed_off(name, uid))

    def mark_handed_off(self, name: str, uid: str) -> bool:
        """False when the record is gone (or was replaced by another with that name)."""
        with self.group.write():
            cursor = self._conn.execute(
                "UPDATE admission_workflows SET handed_off = 1 WHERE name = ? AND uid = ?", (name, uid)
            )
        return cursor.rowcount == 1

    def delete(self, name: str, request_id: str = "") -> bool:
        """Delete a record, remembering request_id so that a retried delete succeeds."""
        with transaction(self._conn):
            deleted = self._conn.execute("DELETE FROM admission_workflows WHERE name = ?", (name,)).rowcount == 1
            if deleted and request_id:
                self._conn.execute(
                    "INSERT OR REPLACE INTO admission_deletions(request_id, name, deleted_at) VALUES(?, ?, ?)",
                    (request_id, name, time.time()),
                )
        return deleted

    def claim_request(self, request_id: str, method: str, name: str) -> tuple[str, str] | None:
        """Record that request_id is used for method on workflow name.

        None when this call claimed it; else the (method, name) it was claimed for before.
        """
        try:
            self._conn.execute(
                "INSERT INTO admission_requests(request_id, method, name, created_at) VALUES(?, ?, ?, ?)",
                (request_id, method, name, time.time()),
            )
        except sqlite3.IntegrityError:
            row = self._conn.execute(
                "SELECT method, name FROM admission_requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            return (str(row[0]), str(row[1])) if row else (method, name)
        return None

    def release_request(self, request_id: str) -> None:
        """Forget a claim whose call failed, so that a retry with the same id runs again."""
        self._conn.execute("DELETE FROM admission_requests WHERE request_id = ?", (request_id,))

    def was_deleted_by(self, request_id: str, name: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM admission_deletions WHERE request_id = ? AND name = ?", (request_id, name)
        ).fetchone()
        return row is not None


def _record(row: tuple[Any, ...]) -> WorkflowRecord:
    name, uid, namespace, generate_name, labels, annotations, created_at_ns, spec, request_id, handed_off = row
    return WorkflowRecord(
        name=name,
        uid=uid,
        namespace=namespace,
        generate_name=generate_name,
        labels=json.loads(labels),
        annotations=json.loads(annotations),
        created_at_ns=created_at_ns,
        spec=json.loads(spec),
        request_id=request_id or "",
        handed_off=bool(handed_off),
    )
