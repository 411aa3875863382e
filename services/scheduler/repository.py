"""SchedulerService's own tables: admitted workflows' run state and their nodes."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from typing import Any

from treadle.services.scheduler.engine.model import Node, WorkflowState
from treadle.services.scheduler.large_values import without_inline_values
from treadle.store.sqlite import group_commit, migrate, transaction

SCHEMA = [
    """CREATE TABLE scheduler_workflows (
        name TEXT PRIMARY KEY,
        uid TEXT NOT NULL,
        namespace TEXT NOT NULL,
        created_at REAL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        resource_version INTEGER NOT NULL DEFAULT 1
    )""",
    """CREATE TABLE scheduler_nodes (
        workflow TEXT NOT NULL,
        node_id TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (workflow, node_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE scheduler_memo (
        cache TEXT NOT NULL,
        key TEXT NOT NULL,
        outputs TEXT NOT NULL,
        node_id TEXT NOT NULL,
        saved_at REAL NOT NULL,
        PRIMARY KEY (cache, key)
    )""",
    "ALTER TABLE scheduler_workflows ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
]


@dataclass
class StoredRun:
    name: str
    uid: str
    namespace: str
    created_at: float | None
    spec: dict[str, Any]
    state: WorkflowState
    resource_version: int
    # Labels and annotations, for {{workflow.labels.X}} and {{workflow.annotations.X}}.
    metadata: dict[str, Any] = field(default_factory=dict)


class SchedulerRepository:
    """Run state. save() commits in `group.write()`: a caller inside `group.deferring()` skips its
    fsync and makes it durable with `await group.sync()` (treadle.store.durability)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.group = group_commit(conn)
        migrate(conn, "scheduler", SCHEMA)

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction around several writes (synchronous code only: the connection is shared)."""
        return transaction(self.conn)

    def insert(self, run: StoredRun) -> bool:
        """Store a new run; False when a run with that name exists already."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO scheduler_workflows(name, uid, namespace, created_at, spec, state, done, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
            (
                run.name,
                run.uid,
                run.namespace,
                run.created_at,
                json.dumps(run.spec),
                _dump_state(_state_fields(run.state), run.state),
                json.dumps(run.metadata),
            ),
        )
        return cur.rowcount == 1

    def save(self, state: WorkflowState, nodes: Iterable[Node], deleted: Iterable[str] = ()) -> int:
        """Persist the run state and changed nodes in one transaction; return the new resource version."""
        deletions = [(state.name, i) for i in deleted]
        upserts = [(state.name, n.id, _dump(_node_record(n))) for n in nodes]
        state_record = _dump_state(_state_record(state), state)
        with self.group.write(), self.transaction():
            if deletions:
                self.conn.executemany("DELETE FROM scheduler_nodes WHERE workflow = ? AND node_id = ?", deletions)
            if upserts:
                self.conn.executemany(
                    "INSERT INTO scheduler_nodes(workflow, node_id, record) VALUES (?, ?, ?) "
                    "ON CONFLICT(workflow, node_id) DO UPDATE SET record = excluded.record",
                    upserts,
                )
            row = self.conn.execute(
                "UPDATE scheduler_workflows SET state = ?, done = ?, resource_version = resource_version + 1 "
                "WHERE name = ? RETURNING resource_version",
                (state_record, int(state.done), state.name),
            ).fetchone()
        return int(row[0]) if row else 0

    def load(self, name: str) -> StoredRun | None:
        row = self.conn.execute(
            "SELECT name, uid, namespace, created_at, spec, state, resource_version, metadata FROM scheduler_workflows "
            "WHERE name = ?",
            (name,),
        ).fetchone()
        return _run(row) if row else None

    def load_nodes(self, name: str) -> list[Node]:
        rows = self.conn.execute("SELECT record FROM scheduler_nodes WHERE workflow = ?", (name,)).fetchall()
        nodes = sorted((Node.from_record(json.loads(r[0])) for r in rows), key=lambda n: n.seq)
        by_id = {n.id: n for n in nodes}
        for node in nodes:
            parent = by_id.get(node.parent_id)
            if parent is not None:
                parent.children.append(node.id)
        return nodes

    def unfinished(self) -> list[StoredRun]:
        rows = self.conn.execute(
            "SELECT name, uid, namespace, created_at, spec, state, resource_version, metadata FROM scheduler_workflows "
            "WHERE done = 0 ORDER BY created_at"
        ).fetchall()
        return [_run(r) for r in rows]

    def states(self, names: list[str]) -> dict[str, WorkflowState]:
        out: dict[str, WorkflowState] = {}
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(f"SELECT name, state FROM scheduler_workflows WHERE name IN ({marks})", chunk)
            out.update({r[0]: WorkflowState.from_record(json.loads(r[1])) for r in rows})
        return out

    def delete(self, name: str) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM scheduler_nodes WHERE workflow = ?", (name,))
            self.conn.execute("DELETE FROM scheduler_workflows WHERE name = ?", (name,))


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _node_record(node: Node) -> dict[str, Any]:
    """The stored form: a large value keeps its reference only; the text is read back on load (large_values.py)."""
    record = node.to_record()
    record["inputs"] = without_inline_values(record["inputs"])
    record["outputs"] = without_inline_values(record["outputs"])
    return record


def _state_record(state: WorkflowState) -> dict[str, Any]:
    record = _state_fields(state)
    record["outputs"] = without_inline_values(record["outputs"])
    return record


_STATE_FIELDS = tuple(f.name for f in fields(WorkflowState))


def _state_fields(state: WorkflowState) -> dict[str, Any]:
    """What state.to_record() holds, for dumping at once: its fields as they are, not deep-copied."""
    return {name: getattr(state, name) for name in _STATE_FIELDS}


def _dump_state(record: dict[str, Any], state: WorkflowState) -> str:
    try:
        return _dump(record)
    except TypeError:  # a value json cannot take as it is (to_record turns nested dataclasses into dicts)
        full = state.to_record()
        full["outputs"] = record["outputs"]
        return _dump(full)


def _run(row: tuple[Any, ...]) -> StoredRun:
    return StoredRun(
        name=row[0],
        uid=row[1],
        namespace=row[2],
        created_at=row[3],
        spec=json.loads(row[4]),
        state=WorkflowState.from_record(json.loads(row[5])),
        resource_version=row[6],
        metadata=json.loads(row[7] or "{}"),
    )


class SqliteMemoCache:
    """memoize's cache, kept in the scheduler's own table (Argo keeps it in ConfigMaps)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, cache: str, key: str) -> tuple[dict[str, Any], float] | None:
        row = self.conn.execute(
            "SELECT outputs, saved_at FROM scheduler_memo WHERE cache = ? AND key = ?", (cache, key)
        ).fetchone()
        return (json.loads(row[0]), float(row[1])) if row else None

    def put(self, cache: str, key: str, outputs: dict[str, Any], node_id: str) -> None:
        self.conn.execute(
            "INSERT INTO scheduler_memo(cache, key, outputs, node_id, saved_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(cache, key) DO UPDATE SET outputs = excluded.outputs, node_id = excluded.node_id, "
            "saved_at = excluded.saved_at",
            (cache, key, _dump(outputs), node_id, time.time()),
        )
