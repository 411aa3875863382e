"""The local store records each object's writer, and still reads objects of its first format."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from treadle.errors import DataLoss
from treadle.services.artifacts.stores import LocalStore, MemoryStore


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("make", [LocalStore, lambda _: MemoryStore()], ids=["local", "memory"])
def test_owner_and_announced_digest(tmp_path: Path, make: object) -> None:
    async def main() -> None:
        store = make(tmp_path)  # type: ignore[operator]
        info = await store.put("wf/p/a", chunks(b"ab", b"c"), owner="wf")
        assert info.owner == "wf"
        assert await store.stat("wf/p/a") == info
        assert (await store.list("wf/")).objects == [info]
        good = hashlib.sha256(b"xyz").hexdigest()
        assert (await store.put("wf/p/b", chunks(b"xyz"), sha256=good)).sha256 == good
        with pytest.raises(DataLoss, match="announced"):
            await store.put("wf/p/a", chunks(b"other"), sha256=good)
        assert await store.stat("wf/p/a") == info  # unchanged

    asyncio.run(main())


def test_objects_of_the_first_format_are_read(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = b"old object"
    path = tmp_path / "objects" / "wf" / "p" / "a%obj"
    path.parent.mkdir(parents=True)
    path.write_bytes(struct.pack(">8sQ32s", b"TRDLOBJ1", len(data), hashlib.sha256(data).digest()) + data)

    async def main() -> None:
        info = await store.stat("wf/p/a")
        assert (info.size, info.sha256, info.owner) == (len(data), hashlib.sha256(data).hexdigest(), "")
        async with await store.get("wf/p/a") as reader:
            assert b"".join([c async for c in reader]) == data

    asyncio.run(main())
