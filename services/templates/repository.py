"""WorkflowTemplateService's own table."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from treadle.store.sqlite import migrate, transaction

SCHEMA = [
    """CREATE TABLE templates_workflow_templates (
        name TEXT PRIMARY KEY,
        uid TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        resource_version INTEGER NOT NULL,
        request_id TEXT UNIQUE
    )""",
    "CREATE TABLE templates_deletions (request_id TEXT PRIMARY KEY, name TEXT NOT NULL)",
]


@dataclass
class StoredTemplate:
    name: str
    uid: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    created_at: float
    resource_version: int


class TemplateRepository:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "templates", SCHEMA)

    def insert(self, t: StoredTemplate, request_id: str) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO templates_workflow_templates"
            "(name, uid, labels, annotations, spec, created_at, resource_version, request_id) VALUES (?,?,?,?,?,?,?,?)",
            (t.name, t.uid, json.dumps(t.labels), json.dumps(t.annotations), json.dumps(t.spec), t.created_at,
             t.resource_version, request_id or None),
        )  # fmt: skip
        return cur.rowcount == 1

    def by_request(self, request_id: str) -> StoredTemplate | None:
        if not request_id:
            return None
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM templates_workflow_templates WHERE request_id = ?", (request_id,)
        )
        found = row.fetchone()
        return _template(found) if found else None

    def get(self, name: str) -> StoredTemplate | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM templates_workflow_templates WHERE name = ?", (name,)
        ).fetchone()
        return _template(row) if row else None

    def page(self, after: str, limit: int) -> list[StoredTemplate]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM templates_workflow_templates WHERE name > ? ORDER BY name LIMIT ?", (after, limit)
        )
        return [_template(r) for r in rows]

    def replace(self, t: StoredTemplate, expected_version: int | None) -> StoredTemplate | None:
        """Store t's spec and labels; None when expected_version is set and stale."""
        query = (
            "UPDATE templates_workflow_templates SET labels = ?, annotations = ?, spec = ?, "
            "resource_version = resource_version + 1 WHERE name = ?"
        )
        params: list[Any] = [json.dumps(t.labels), json.dumps(t.annotations), json.dumps(t.spec), t.name]
        if expected_version is not None:
            query += " AND resource_version = ?"
            params.append(expected_version)
        if self.conn.execute(query, params).rowcount != 1:
            return None
        return self.get(t.name)

    def delete(self, name: str, request_id: str) -> bool:
        with transaction(self.conn):
            gone = self.conn.execute("DELETE FROM templates_workflow_templates WHERE name = ?", (name,)).rowcount == 1
            if gone and request_id:
                self.conn.execute(
                    "INSERT OR IGNORE INTO templates_deletions(request_id, name) VALUES (?, ?)", (request_id, name)
                )
        return gone

    def deleted_by(self, request_id: str, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM templates_deletions WHERE request_id = ? AND name = ?", (request_id, name)
        ).fetchone()
        return row is not None


_COLUMNS = "name, uid, labels, annotations, spec, created_at, resource_version"


def _template(row: tuple[Any, ...]) -> StoredTemplate:
    return StoredTemplate(
        name=row[0],
        uid=row[1],
        labels=json.loads(row[2]),
        annotations=json.loads(row[3]),
        spec=json.loads(row[4]),
        created_at=row[5],
        resource_version=row[6],
    )


def now() -> float:
    return time.time()
