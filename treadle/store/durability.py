"""Group commit for treadle's SQLite database: many commits, one fsync.

A commit with ``PRAGMA synchronous=FULL`` (what `open_database` sets) fsyncs the
write-ahead log before it returns. On the server's event loop that wait
serialises everything: N concurrent calls that each commit pay N fsyncs, one
after another. `GroupCommit` lets a caller commit *without* that fsync and then
wait, off the event loop, for one ``fdatasync`` of the WAL file that every
caller waiting at that moment shares::

    group = group_commit(conn)
    with group.deferred():            # synchronous code only: no await inside
        conn.execute("INSERT ...")    # or BEGIN IMMEDIATE ... COMMIT
    await group.sync()                # then acknowledge

``deferred()`` switches the connection to ``synchronous=NORMAL`` for the commits
made inside it and back to ``FULL`` on the way out, so code that does not use
this module keeps fsyncing each commit. A repository whose commit sits deep in a
call chain wraps it in ``group.write()`` instead; it is deferred only while the
calling task is inside ``group.deferring()`` (which may span awaits), so the
code that acknowledges decides, and every other caller still gets FULL.
``group.written`` is a ticket for the commits made so far: ``await
group.sync(ticket)`` waits only for those. ``await group.batched(op)`` runs a
synchronous write in one (deferred) transaction with the other ops queued in the
same turn of the event loop, for writes whose result may wait that long.

Why this is as durable as ``synchronous=FULL`` for everything acknowledged after
``sync()`` returned (SQLite 3.x, WAL mode; see wal.c ``walFrames`` and
``walCheckpoint``, pager.c ``sqlite3PagerSetFlags``, and
https://www.sqlite.org/pragma.html#pragma_synchronous and
https://www.sqlite.org/wal.html):

- In WAL mode the only difference between FULL and NORMAL is the sync of the WAL
  at each commit: ``walSyncFlags`` carries the commit sync only when
  ``synchronous>=FULL``, while the checkpoint syncs (the WAL before a
  checkpoint, the database file after it) and the sync of the WAL header when
  the log starts or restarts are made at NORMAL too. A NORMAL commit has written
  its frames, commit frame included, to the WAL file with ``write()``; it is
  in the page cache, so a crash of the process (kill -9) loses nothing at any
  setting ("transactions are durable across application crashes regardless of
  the synchronous setting"). What NORMAL gives up is power loss and OS crashes.
- ``sync()`` ``fdatasync``s the WAL file itself (opened by path, so a WAL that
  was deleted and recreated is never missed), in a thread, after the commits it
  covers returned. That is the very call a FULL commit makes (SQLite's unix VFS
  uses ``fdatasync`` for ``SQLITE_SYNC_NORMAL`` syncs, and FULL without
  ``fullfsync`` is that). So when it returns, the commit frames are on disk as
  they would be after a FULL commit. Frames are appended in commit order and
  recovery replays a WAL only up to the last commit frame whose cumulative
  checksum is valid, so a synced commit carries every earlier commit with it.
- Checkpoints: a checkpoint syncs the WAL, copies frames into the database file
  and syncs the database file before it records them as backfilled; the WAL is
  only restarted (overwritten from its start) once every frame is backfilled,
  and deleted only when the last connection closes after a complete
  checkpoint. A deferred commit is therefore either still in the WAL file that
  ``sync()`` flushes, or already in a synced database file; a WAL that is
  missing when ``sync()`` opens it has nothing left to flush. A newly created
  WAL file's directory entry is synced by SQLite with the WAL header (unix VFS,
  first sync of a new journal), at NORMAL as at FULL.
- Padding: FULL pads the last commit frame to a sector boundary only when the
  file system lacks powersafe overwrite; SQLite assumes powersafe overwrite by
  default on unix (SQLITE_POWERSAFE_OVERWRITE=1), in which case FULL does not pad
  either.

What differs from FULL: a deferred commit is visible to readers of the same
database before it is durable, as with any group commit, so a read served in
that window (a few ms) may show a row that a power loss then takes back. Nothing
is *acknowledged* as stored before ``sync()`` returned. If an fsync fails the
group is broken for good (after a failed fsync Linux may drop the dirty pages
and report the next fsync clean): every later ``sync()`` raises DataLoss.

Connections that `open_database` did not make (or in-memory ones) get a group
that defers nothing and whose ``sync()`` returns at once: their commits keep
whatever durability the connection has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from treadle.errors import DataLoss

log = logging.getLogger(__name__)
T = TypeVar("T")


class GroupCommit:
    """Deferred-sync commits on one connection and the shared fsync that makes them durable."""

    def __init__(
        self, conn: sqlite3.Connection | None, wal_path: str | None, *, fsync: Callable[[int], None] = os.fdatasync
    ) -> None:
        """wal_path: the connection's -wal file; None (an in-memory database) defers nothing."""
        self._conn = conn
        self._wal_path = wal_path
        self._fsync = fsync
        self._depth = 0
        # Deferred commits made so far (ticket), and how many of them are known durable.
        self._written = 0
        self._synced = 0
        # Callers waiting for a round, with the ticket each waits for; whether a round runs, on which loop.
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._round_running = False
        self._round_loop: asyncio.AbstractEventLoop | None = None
        self._rounds: queue.SimpleQueue[tuple[int, asyncio.AbstractEventLoop] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._broken: BaseException | None = None
        # Tasks inside deferring(), with their nesting depth; the loop they run on, and its thread.
        self._deferring: dict[asyncio.Task[object], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._lock = threading.Lock()
        # fdatasync calls made: many deferred commits share one.
        self.syncs = 0
        # Ops waiting for the next batched transaction, with their callers' futures.
        self._batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    @property
    def enabled(self) -> bool:
        """False for a connection without a WAL file: nothing is deferred, sync() returns at once."""
        return self._wal_path is not None

    @property
    def written(self) -> int:
        """A ticket for every deferred commit made so far: `sync(ticket)` waits for those only."""
        return self._written

    @property
    def pending(self) -> bool:
        """Some deferred commit is not known to be durable yet."""
        return self._synced < self._written

    # -- committing --------------------------------------------------------------------

    def deferred(self) -> contextlib.AbstractContextManager[None]:
        """Commits made inside skip their own fsync; `sync()` makes them durable.

        Enter it outside any transaction, and keep its body synchronous: the connection is
        shared, and any commit made on it while the body awaits would be deferred too.
        """
        return _Deferred(self)

    def deferring(self) -> contextlib.AbstractContextManager[None]:
        """While the current task is inside, the commits it makes in `write()` blocks are deferred.

        For code that acknowledges (a servicer, a core method) around repositories that commit:
        ``with group.deferring(): ... await ...`` then ``await group.sync()`` before answering.
        Other tasks, and tasks started meanwhile, still commit with a full fsync.
        """
        return _Deferring(self)

    def write(self) -> contextlib.AbstractContextManager[None]:
        """Wrap one synchronous commit: deferred when the calling task is inside `deferring()`."""
        if self._deferring and self._task() in self._deferring:
            return _Deferred(self)
        return _NOTHING

    def _task(self) -> asyncio.Task[object] | None:
        """The current task. asyncio.current_task() asks the OS for the process id every time (to
        notice a fork); on the thread of the loop that deferring() last saw, ask that loop instead."""
        if threading.get_ident() == self._loop_thread and self._loop is not None:
            return asyncio.current_task(self._loop)
        return _current_task()

    def _defer(self) -> bool:
        """Enter a deferred block; False when there is nothing to defer (no WAL, or inside a transaction)."""
        conn = self._conn
        if self._wal_path is None or conn is None or conn.in_transaction:
            return False  # the enclosing transaction's owner decides
        if self._depth == 0:
            conn.execute("PRAGMA synchronous=NORMAL")
        self._depth += 1
        return True

    def _undefer(self) -> None:
        conn = self._conn
        assert conn is not None
        self._depth -= 1
        self._written += 1
        if self._depth == 0:
            if conn.in_transaction:
                # A transaction left open would go on under someone else's commit; end it here.
                log.error("a transaction was left open in a deferred block; rolling it back")
                conn.execute("ROLLBACK")
            conn.execute("PRAGMA synchronous=FULL")

    async def batched(self, op: Callable[[], T]) -> T:
        """Run op (synchronous writes on this connection) in one transaction with the other ops
        queued during this turn of the event loop, and return what it returns.

        The transaction's commit is deferred: `await sync()` before acknowledging what op stored.
        Each op runs in a savepoint, so one that raises undoes its own writes only, and its
        caller gets the exception. For writes whose result may wait a turn of the event loop:
        N callers pay one BEGIN/COMMIT (and its WAL frames) instead of N.
        """
        conn = self._conn
        if conn is None:
            return op()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._batch.append((op, future))
        if len(self._batch) == 1:
            loop.call_soon(self._run_batch)
        return await future

    def _run_batch(self) -> None:
        batch, self._batch = self._batch, []
        conn = self._conn
        assert conn is not None
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.deferred():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if len(batch) == 1:
                        outcomes.append((True, batch[0][0]()))
                    else:
                        for op, _ in batch:
                            conn.execute("SAVEPOINT batched")
                            try:
                                outcomes.append((True, op()))
                            except Exception as error:
                                conn.execute("ROLLBACK TO batched")
                                outcomes.append((False, error))
                            conn.execute("RELEASE batched")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue  # its caller was cancelled; what op wrote stays
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    # -- syncing -----------------------------------------------------------------------

    async def sync(self, upto: int | None = None) -> None:
        """Return once every deferred commit made before this call (or up to ticket `upto`) is durable.

        Callers waiting at the same time share one fdatasync, made in a thread of the group's own.
        A call that arrives while one runs waits for the next, which starts as soon as that one
        ends and covers every caller that arrived meanwhile. A cancelled caller stops waiting;
        the round goes on for the others.
        """
        if self._wal_path is None:
            return
        target = self._written if upto is None else min(upto, self._written)
        if self._synced >= target:
            return
        if self._broken is not None:
            raise DataLoss(f"the state store could not be made durable: {self._broken}")
        loop = asyncio.get_running_loop()
        if self._round_loop is not loop:
            # A round of another (closed) event loop will never report here: forget it and its callers.
            self._round_loop, self._round_running, self._waiters = loop, False, []
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append((target, waiter))
        if not self._round_running:
            self._start_round()
        await waiter

    def sync_blocking(self) -> None:
        """Make every deferred commit durable now, on the calling thread (for synchronous code)."""
        if self._wal_path is None or not self.pending:
            return
        upto = self._written
        self._sync_file()
        self._synced = max(self._synced, upto)

    def _start_round(self) -> None:
        """Ask the sync thread for one fdatasync covering every deferred commit made so far."""
        self._round_running = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._sync_thread, name="sqlite-group-commit", daemon=True)
            self._thread.start()
        assert self._round_loop is not None
        self._rounds.put((self._written, self._round_loop))

    def _sync_thread(self) -> None:
        while True:
            request = self._rounds.get()
            if request is None:
                return
            upto, loop = request
            error: BaseException | None = None
            try:
                self._sync_file()
            except BaseException as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits any more
                loop.call_soon_threadsafe(self._round_done, upto, error)

    def _round_done(self, upto: int, error: BaseException | None) -> None:
        """On the event loop: wake the callers the round covered, start the next round for the rest."""
        self._round_running = False
        if error is not None and self._broken is None:
            log.critical("fdatasync of %s failed; no further write is acknowledged: %s", self._wal_path, error)
            self._broken = error
        if error is None:
            self._synced = max(self._synced, upto)
        waiting: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._waiters:
            if waiter.done():
                continue  # its caller was cancelled
            if self._broken is not None:
                waiter.set_exception(DataLoss(f"the state store could not be made durable: {self._broken}"))
            elif target <= self._synced:
                waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._waiters = waiting
        if waiting:
            self._start_round()

    def _sync_file(self) -> None:
        assert self._wal_path is not None
        try:
            fd = os.open(self._wal_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            # SQLite deletes the WAL only after checkpointing every frame into the (synced) database file.
            return
        try:
            self._fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self.syncs += 1

    def close(self) -> None:
        """Flush what is pending and let the sync thread go (the connection is closing)."""
        try:
            if self._broken is None:
                self.sync_blocking()
        except OSError:
            log.exception("the last fdatasync of %s failed", self._wal_path)
        if self._thread is not None:
            self._rounds.put(None)
            self._thread = None


class _Deferred:
    __slots__ = ("_entered", "_group")

    def __init__(self, group: GroupCommit) -> None:
        self._group = group
        self._entered = False

    def __enter__(self) -> None:
        self._entered = self._group._defer()

    def __exit__(self, *exc: object) -> None:
        if self._entered:
            self._group._undefer()


class _Deferring:
    __slots__ = ("_group", "_task")

    def __init__(self, group: GroupCommit) -> None:
        self._group = group
        self._task: asyncio.Task[object] | None = None

    def __enter__(self) -> None:
        group = self._group
        task = _current_task()
        if task is not None and group._wal_path is not None:
            self._task = task
            group._loop, group._loop_thread = task.get_loop(), threading.get_ident()
            group._deferring[task] = group._deferring.get(task, 0) + 1

    def __exit__(self, *exc: object) -> None:
        task, deferring = self._task, self._group._deferring
        if task is not None:
            depth = deferring.pop(task) - 1
            if depth:
                deferring[task] = depth


_NOTHING = contextlib.nullcontext()
_NOT_DEFERRED = GroupCommit(None, None)


def group_commit(conn: sqlite3.Connection) -> GroupCommit:
    """The connection's group commit; for connections open_database did not make, one that defers nothing."""
    group = getattr(conn, "group", None)
    return group if isinstance(group, GroupCommit) else _NOT_DEFERRED


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
