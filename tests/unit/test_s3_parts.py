"""Cutting uploads into S3 parts: every size, every chunking, exact bytes, and the last part detected."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from treadle.services.artifacts.stores.s3_parts import PartBuffers, PartReader


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
    yield b""  # an empty chunk at the end is harmless


@pytest.mark.parametrize("total", [0, 1, 4, 5, 6, 10, 11, 23])
@pytest.mark.parametrize("chunk", [1, 2, 5, 7])
def test_parts_cover_the_bytes_exactly(total: int, chunk: int) -> None:
    data = bytes(i % 251 for i in range(total))
    part = 5

    async def main() -> list[bytes]:
        reader = PartReader(chunks(data, chunk))
        parts = [await reader.read_bytes(part)]
        buffers = PartBuffers()
        while not reader.exhausted:
            buffer = buffers.take(part)
            filled = await reader.read_into(buffer)
            parts.append(bytes(buffer[:filled]))
            buffers.give(buffer)
        assert reader.size == total and reader.sha256 == hashlib.sha256(data).hexdigest()
        return parts

    parts = asyncio.run(main())
    assert b"".join(parts) == data
    assert all(len(p) == part for p in parts[:-1])  # only the last may be short ...
    assert len(parts) == 1 or parts[-1] or total % part == 0  # ... or empty after an exact multiple
