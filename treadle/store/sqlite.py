"""Opening treadle's SQLite database: WAL, synchronous=FULL, one schema per service.

Every commit is durable (fsynced) before it returns, unless the caller defers its sync with
the connection's group commit (treadle.store.durability): then the caller must
`await group.sync()` before it acknowledges anything that commit stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from treadle.store.durability import GroupCommit, group_commit

__all__ = ["Connection", "GroupCommit", "group_commit", "migrate", "open_database", "transaction"]


class Connection(sqlite3.Connection):
    """A sqlite3.Connection that carries its group commit (open_database makes these)."""

    group: GroupCommit | None = None

    def close(self) -> None:
        if self.group is not None:
            self.group.close()
        super().close()


def open_database(path: Path | str) -> Connection:
    """A connection tuned for durable, concurrent use by one process.

    isolation_level=None leaves transactions to the caller (BEGIN/COMMIT),
    so a service can group several writes into one fsync.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0, factory=Connection)
    assert isinstance(conn, Connection)
    journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.group = GroupCommit(conn, _wal_path(conn) if str(journal).lower() == "wal" else None)
    return conn


def _wal_path(conn: sqlite3.Connection) -> str | None:
    """The -wal file beside the main database file (SQLite reports its full path); None in memory."""
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return f"{file}-wal" if file else None
    return None


def migrate(conn: sqlite3.Connection, owner: str, statements: list[str]) -> None:
    """Apply a service's schema statements once each, in order, recording the version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (owner TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_versions WHERE owner = ?", (owner,)).fetchone()
    current = row[0] if row else 0
    if current >= len(statements):
        return
    with transaction(conn):
        for stmt in statements[current:]:
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO schema_versions(owner, version) VALUES(?, ?) "
            "ON CONFLICT(owner) DO UPDATE SET version = excluded.version",
            (owner, len(statements)),
        )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT around the block, ROLLBACK if it raises (synchronous code only:
    the connection is shared by the services of one process)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
