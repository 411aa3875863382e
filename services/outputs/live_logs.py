"""Running steps' logs, held in memory while they run so that followers can read them live.

An executor streams a step's log here (StreamStepLog) once the step has run for
a moment; WorkflowLogs followers read it through FollowStepLog. The lines stay
a while after the stream ends, so a follower that arrives late still gets them
all; after that the stored log artifact is the only copy. Each log holds at most
MAX_LINES lines: older ones are dropped (and a follower resuming before them
starts at the oldest kept).

The logs live in this process: the executor and the follower must reach the
same OutputService replica (one per deployment today).
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from treadle.errors import NotFound

MAX_LINES = 100_000
# How long a finished log stays for followers, in seconds.
KEEP_SECONDS = 120.0

Key = tuple[str, str]  # (workflow, node id)


@dataclass
class LiveLog:
    attempt: int
    lines: list[str] = field(default_factory=list)
    # Index in the whole log of lines[0] (lines before it were dropped).
    first: int = 0
    finished_at: float | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _partial: str = ""
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )

    @property
    def end(self) -> int:
        return self.first + len(self.lines)

    def add(self, chunk: bytes, *, final: bool = False) -> None:
        text = self._partial + self._decoder.decode(chunk, final=final)
        *complete, self._partial = text.split("\n")
        if final and self._partial:
            complete.append(self._partial)
            self._partial = ""
        self.lines.extend(complete)
        overflow = len(self.lines) - MAX_LINES
        if overflow > 0:
            del self.lines[:overflow]
            self.first += overflow


class LiveLogs:
    def __init__(self) -> None:
        self._logs: dict[Key, LiveLog] = {}

    def open(self, workflow: str, node_id: str, attempt: int) -> LiveLog:
        """A fresh log for this attempt (a later attempt replaces an earlier one's)."""
        self._forget_old()
        log = LiveLog(attempt)
        self._logs[(workflow, node_id)] = log
        return log

    async def append(self, log: LiveLog, chunk: bytes) -> None:
        log.add(chunk)
        async with log.changed:
            log.changed.notify_all()

    async def close(self, log: LiveLog) -> None:
        log.add(b"", final=True)
        log.finished_at = time.monotonic()
        async with log.changed:
            log.changed.notify_all()

    async def follow(self, workflow: str, node_id: str, from_line: int) -> AsyncIterator[tuple[int, list[str]]]:
        """(index of the first line, lines) batches from from_line on, until the log ends. NotFound without one."""
        log = self._logs.get((workflow, node_id))
        if log is None:
            raise NotFound("live log", f"{workflow}/{node_id}")
        position = max(from_line, log.first)
        while True:
            async with log.changed:
                await log.changed.wait_for(lambda at=position: log.end > at or log.finished_at is not None)  # type: ignore[misc]
            position = max(position, log.first)
            if log.end > position:
                batch = log.lines[position - log.first :]
                yield position, batch
                position += len(batch)
            elif log.finished_at is not None:
                return

    def delete_workflow(self, workflow: str) -> None:
        for key in [key for key in self._logs if key[0] == workflow]:
            del self._logs[key]

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - KEEP_SECONDS
        for key, log in list(self._logs.items()):
            if log.finished_at is not None and log.finished_at < cutoff:
                del self._logs[key]
