"""Group commit (treadle.store.durability): deferred commits, one shared fdatasync, and what it makes durable."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from treadle.errors import DataLoss
from treadle.store.durability import GroupCommit
from treadle.store.sqlite import group_commit, open_database

FULL, NORMAL = 2, 1


def synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def database(tmp_path: Path, fsync: Callable[[int], None] | None = None) -> tuple[sqlite3.Connection, GroupCommit]:
    conn = open_database(tmp_path / "state.db")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    if fsync is not None:
        conn.group = GroupCommit(conn, f"{tmp_path / 'state.db'}-wal", fsync=fsync)  # type: ignore[attr-defined]
    return conn, group_commit(conn)


def test_open_database_keeps_full_and_defers_only_inside_deferred(tmp_path: Path) -> None:
    conn, group = database(tmp_path)
    assert group.enabled and synchronous(conn) == FULL
    with group.deferred():
        assert synchronous(conn) == NORMAL
        with group.deferred():  # nested: still deferred, restored once at the outer end
            conn.execute("INSERT INTO t VALUES (1)")
        assert synchronous(conn) == NORMAL
    assert synchronous(conn) == FULL and group.pending
    with pytest.raises(sqlite3.IntegrityError), group.deferred():
        conn.execute("INSERT INTO t VALUES (1)")
    assert synchronous(conn) == FULL
    conn.execute("BEGIN")
    with group.deferred():  # inside someone's transaction: that transaction's owner decides
        conn.execute("INSERT INTO t VALUES (2)")
    conn.execute("COMMIT")
    assert synchronous(conn) == FULL
    conn.close()


def test_a_transaction_left_open_in_a_deferred_block_is_rolled_back(tmp_path: Path) -> None:
    conn, group = database(tmp_path)
    with group.deferred():
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction and synchronous(conn) == FULL
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    conn.close()


def test_concurrent_writers_share_fdatasyncs(tmp_path: Path) -> None:
    calls: list[int] = []
    conn, group = database(tmp_path, fsync=lambda fd: (calls.append(fd), os.fdatasync(fd))[-1])

    async def writer(n: int) -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (?)", (n,))
        await group.sync()

    async def main() -> None:
        for start in range(0, 200, 50):
            await asyncio.gather(*(writer(n) for n in range(start, start + 50)))

    asyncio.run(main())
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 200
    # 200 acknowledged commits; each batch of 50 concurrent writers needs at most two rounds.
    assert 1 <= group.syncs == len(calls) <= 8
    assert not group.pending
    conn.close()


def test_a_commit_made_while_a_sync_runs_waits_for_the_next_one(tmp_path: Path) -> None:
    """A round that started before a commit does not cover it."""
    started, release = threading.Event(), threading.Event()
    rounds: list[int] = []

    def slow_fsync(fd: int) -> None:
        rounds.append(fd)
        started.set()
        release.wait(5)
        os.fdatasync(fd)

    conn, group = database(tmp_path, fsync=slow_fsync)

    async def main() -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (1)")
        first = asyncio.create_task(group.sync())
        await asyncio.to_thread(started.wait, 5)  # round 1 runs, covering commit 1 only
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (2)")
        second = asyncio.create_task(group.sync())
        third = asyncio.create_task(group.sync())  # shares round 2 with the second
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()
        release.set()
        await asyncio.gather(first, second, third)
        # Round 1 could not cover commit 2; the second and third callers shared round 2.
        assert len(rounds) == 2

    asyncio.run(main())
    conn.close()


def test_sync_up_to_a_ticket_does_not_wait_for_later_commits(tmp_path: Path) -> None:
    conn, group = database(tmp_path)

    async def main() -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (1)")
        ticket = group.written
        await group.sync(ticket)
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (2)")
        syncs = group.syncs
        await group.sync(ticket)  # already durable: no new round
        assert group.syncs == syncs and group.pending
        await group.sync()
        assert group.syncs == syncs + 1 and not group.pending

    asyncio.run(main())
    conn.close()


def test_acknowledged_commits_are_in_the_synced_log(tmp_path: Path) -> None:
    """What a power loss would leave: the database file plus the WAL as it was at the last fdatasync.

    Every commit acknowledged after sync() is in that image; one made after the last sync is not.
    """
    images: list[bytes] = []

    def capture(fd: int) -> None:
        # Only what was written before the fdatasync began is sure to be on disk after it.
        size = os.fstat(fd).st_size
        os.fdatasync(fd)
        images.append(os.pread(fd, size, 0))

    conn, group = database(tmp_path, fsync=capture)
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the database file stays as it is: only the WAL grows
    acknowledged: list[int] = []

    async def writer(n: int) -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (?)", (n,))
        await group.sync()
        acknowledged.append(n)

    async def main() -> None:
        await asyncio.gather(*(writer(n) for n in range(100)))

    asyncio.run(main())
    with group.deferred():
        conn.execute("INSERT INTO t VALUES (1000)")  # never synced, never acknowledged
    crashed = tmp_path / "after-power-loss"
    crashed.mkdir()
    shutil.copy(tmp_path / "state.db", crashed / "state.db")
    (crashed / "state.db-wal").write_bytes(images[-1])
    survivor = sqlite3.connect(crashed / "state.db")
    rows = {n for (n,) in survivor.execute("SELECT n FROM t")}
    survivor.close()
    assert sorted(acknowledged) == list(range(100))
    assert set(acknowledged) <= rows and 1000 not in rows
    assert len(images) < 100
    conn.close()


def test_deferring_covers_the_writes_of_its_own_task_only(tmp_path: Path) -> None:
    conn, group = database(tmp_path)
    seen: dict[str, int] = {}

    def write(who: str, n: int) -> None:
        with group.write():
            seen[who] = synchronous(conn)
            conn.execute("INSERT INTO t VALUES (?)", (n,))

    async def other() -> None:
        write("other", 2)

    async def main() -> None:
        with group.deferring():
            await asyncio.sleep(0)
            write("deferring", 1)
            task = asyncio.create_task(other())  # started inside the scope, but another task
            await task
        write("after", 3)
        await group.sync()

    asyncio.run(main())
    assert seen == {"deferring": NORMAL, "other": FULL, "after": FULL}
    assert synchronous(conn) == FULL
    conn.close()


def test_batched_ops_share_one_transaction_and_fail_alone(tmp_path: Path) -> None:
    conn, group = database(tmp_path)
    conn.execute("INSERT INTO t VALUES (5)")
    commits: list[int] = []
    conn.set_trace_callback(lambda sql: commits.append(1) if sql == "COMMIT" else None)

    def insert(n: int) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (n,))
        conn.execute("INSERT INTO t VALUES (?)", (n + 100,))
        return n

    async def main() -> list[int | BaseException]:
        results = await asyncio.gather(
            *(group.batched(lambda n=n: insert(n)) for n in (1, 5, 7)), return_exceptions=True
        )
        await group.sync()
        return results

    results = asyncio.run(main())
    assert results[0] == 1 and results[2] == 7 and isinstance(results[1], sqlite3.IntegrityError)
    assert {n for (n,) in conn.execute("SELECT n FROM t")} == {1, 101, 5, 7, 107}  # 105 was undone with 5
    assert len(commits) == 1 and synchronous(conn) == FULL
    conn.close()


def test_a_failed_fdatasync_breaks_the_group_for_good(tmp_path: Path) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    conn, group = database(tmp_path, fsync=failing)

    async def main() -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(DataLoss):
            await group.sync()
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(DataLoss):
            await group.sync()

    asyncio.run(main())
    conn.close()


def test_connections_open_database_did_not_make_defer_nothing(tmp_path: Path) -> None:
    plain = sqlite3.connect(tmp_path / "plain.db", isolation_level=None)
    plain.execute("PRAGMA synchronous=FULL")
    group = group_commit(plain)
    assert not group.enabled
    with group.deferred():
        assert synchronous(plain) == FULL
    asyncio.run(group.sync())
    memory = open_database(":memory:")
    assert not group_commit(memory).enabled
    plain.close()
    memory.close()


def test_a_cancelled_caller_leaves_the_round_to_the_others(tmp_path: Path) -> None:
    release = threading.Event()

    def slow_fsync(fd: int) -> None:
        release.wait(5)
        os.fdatasync(fd)

    conn, group = database(tmp_path, fsync=slow_fsync)

    async def main() -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (1)")
        impatient = asyncio.create_task(group.sync())
        patient = asyncio.create_task(group.sync())
        await asyncio.sleep(0.05)
        impatient.cancel()
        await asyncio.sleep(0)
        release.set()
        await patient
        assert impatient.cancelled() and not group.pending

    asyncio.run(main())
    conn.close()


def test_the_group_serves_one_event_loop_after_another(tmp_path: Path) -> None:
    conn, group = database(tmp_path)

    async def commit_and_sync(n: int) -> None:
        with group.deferred():
            conn.execute("INSERT INTO t VALUES (?)", (n,))
        await group.sync()

    for n in range(3):
        asyncio.run(commit_and_sync(n))
    assert not group.pending and group.syncs == 3
    conn.close()
