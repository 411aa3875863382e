"""Mutexes and semaphores shared by every workflow, in the scheduler's own tables.

A holder is "<workflow>" or "<workflow>/<node id>". Acquiring is all or
nothing and idempotent per holder, so a scheduler that restarts mid-way
takes the same locks again without counting them twice.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from treadle.errors import FieldViolation, InvalidSpec, NotFound
from treadle.store.sqlite import migrate

SCHEMA = [
    "CREATE TABLE scheduler_semaphores (name TEXT PRIMARY KEY, max_holders INTEGER NOT NULL)",
    """CREATE TABLE scheduler_lock_holders (
        lock TEXT NOT NULL,
        holder TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        PRIMARY KEY (lock, holder)
    )""",
    "CREATE INDEX scheduler_lock_holders_by_holder ON scheduler_lock_holders(holder)",
]


@dataclass
class LockInfo:
    name: str
    limit: int
    holders: list[str] = field(default_factory=list)


class SqliteLocks:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "scheduler_locks", SCHEMA)

    def try_acquire(self, keys: list[str], holder: str) -> str:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for key in keys:
                if self._holds(key, holder):
                    continue
                limit = self._limit(key)
                if limit is None:
                    self.conn.execute("ROLLBACK")
                    return f"semaphore {key.removeprefix('semaphore/')!r} is not defined (create it with SetSemaphore)"
                count = self.conn.execute(
                    "SELECT COUNT(*) FROM scheduler_lock_holders WHERE lock = ?", (key,)
                ).fetchone()[0]
                if count >= limit:
                    self.conn.execute("ROLLBACK")
                    return f"waiting for lock {key}"
            now = time.time()
            self.conn.executemany(
                "INSERT OR IGNORE INTO scheduler_lock_holders(lock, holder, acquired_at) VALUES (?, ?, ?)",
                [(key, holder, now) for key in keys],
            )
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return ""

    def release(self, holder: str) -> None:
        self.conn.execute("DELETE FROM scheduler_lock_holders WHERE holder = ?", (holder,))

    def release_workflow(self, workflow: str) -> None:
        self.conn.execute(
            "DELETE FROM scheduler_lock_holders WHERE holder = ? OR holder LIKE ? ESCAPE '\\'",
            (workflow, workflow.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"),
        )

    def set_semaphore(self, name: str, limit: int) -> None:
        if not name or limit < 0:
            raise InvalidSpec(FieldViolation("limit" if name else "name", "a semaphore needs a name and a limit >= 0"))
        self.conn.execute(
            "INSERT INTO scheduler_semaphores(name, max_holders) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET max_holders = excluded.max_holders",
            (name, limit),
        )

    def delete_semaphore(self, name: str) -> None:
        if self.conn.execute("DELETE FROM scheduler_semaphores WHERE name = ?", (name,)).rowcount != 1:
            raise NotFound("semaphore", name)

    def describe(self) -> list[LockInfo]:
        infos = {
            f"semaphore/{name}": LockInfo(f"semaphore/{name}", limit)
            for name, limit in self.conn.execute("SELECT name, max_holders FROM scheduler_semaphores")
        }
        for lock, holder in self.conn.execute("SELECT lock, holder FROM scheduler_lock_holders ORDER BY acquired_at"):
            infos.setdefault(lock, LockInfo(lock, 1 if lock.startswith("mutex/") else 0)).holders.append(holder)
        return sorted(infos.values(), key=lambda i: i.name)

    def _holds(self, key: str, holder: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM scheduler_lock_holders WHERE lock = ? AND holder = ?", (key, holder)
        ).fetchone()
        return row is not None

    def _limit(self, key: str) -> int | None:
        if key.startswith("mutex/"):
            return 1
        row = self.conn.execute(
            "SELECT max_holders FROM scheduler_semaphores WHERE name = ?", (key.removeprefix("semaphore/"),)
        ).fetchone()
        return int(row[0]) if row else None
