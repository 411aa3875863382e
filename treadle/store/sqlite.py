"""Opening treadle's SQLite database: WAL, synchronous=FULL, one schema per service."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path | str) -> sqlite3.Connection:
    """A connection tuned for durable, concurrent use by one process.

    isolation_level=None leaves transactions to the caller (BEGIN/COMMIT),
    so a service can group several writes into one fsync.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(conn: sqlite3.Connection, owner: str, statements: list[str]) -> None:
    """Apply a service's schema statements once each, in order, recording the version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (owner TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_versions WHERE owner = ?", (owner,)).fetchone()
    current = row[0] if row else 0
    if current >= len(statements):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in statements[current:]:
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO schema_versions(owner, version) VALUES(?, ?) "
            "ON CONFLICT(owner) DO UPDATE SET version = excluded.version",
            (owner, len(statements)),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
