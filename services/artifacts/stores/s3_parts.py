"""Cutting an upload's chunks into S3 multipart parts, in reused buffers.

Part buffers are allocated once per upload and reused, rather than a fresh
part-sized ``bytes`` per part: besides the copies saved, freeing part-sized
blocks over and over makes glibc raise its mmap threshold and keep the freed
memory in the heap, which showed as tens of MB of extra resident memory.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import AsyncIterator

MAX_PART_BYTES = 5 * 1024 * 1024 * 1024
_PARTS_PER_SIZE = 1000


def part_size(base: int, number: int) -> int:
    """Part number's size: base for the first 1,000 parts, then doubling every 1,000 (S3 allows 10,000)."""
    return min(base << ((number - 1) // _PARTS_PER_SIZE), MAX_PART_BYTES)


class PartReader:
    """Reads an upload's chunks part by part, counting and hashing them.

    It reads one chunk ahead, so that after each part ``exhausted`` tells
    whether that part was the last.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._digest = hashlib.sha256()
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self.size = 0
        self.exhausted = False

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    async def read_bytes(self, limit: int) -> bytes:
        """The next limit bytes as a new bytes object (fewer only as the last part)."""
        while self._pending_size <= limit and await self._pull():
            pass
        taken: list[bytes] = []
        wanted = limit
        while self._pending and wanted:
            taken.append(self._take(wanted))
            wanted -= len(taken[-1])
        return b"".join(taken)

    async def read_into(self, buffer: bytearray) -> int:
        """Fill buffer with the next bytes; how many (fewer than len(buffer) only as the last part)."""
        view = memoryview(buffer)
        filled = 0
        while True:
            while self._pending and filled < len(buffer):
                chunk = self._take(len(buffer) - filled)
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
            if (filled == len(buffer) and self._pending) or not await self._pull():
                return filled

    async def _pull(self) -> bool:
        """Read one more chunk into the pending queue; False at the end."""
        if self.exhausted:
            return False
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.exhausted = True
            return False
        if chunk:
            self._digest.update(chunk)
            self.size += len(chunk)
            self._pending.append(chunk)
            self._pending_size += len(chunk)
        return True

    def _take(self, most: int) -> bytes:
        chunk = self._pending.popleft()
        if len(chunk) > most:
            self._pending.appendleft(chunk[most:])
            chunk = chunk[:most]
        self._pending_size -= len(chunk)
        return chunk


class PartBuffers:
    """A free list of part buffers, by size."""

    def __init__(self) -> None:
        self._free: dict[int, list[bytearray]] = {}

    def take(self, size: int) -> bytearray:
        free = self._free.get(size)
        return free.pop() if free else bytearray(size)

    def give(self, buffer: bytearray) -> None:
        if len(self._free.get(len(buffer), ())) < 4:
            self._free.setdefault(len(buffer), []).append(buffer)
