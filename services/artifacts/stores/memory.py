"""An in-memory ArtifactStore for tests and throwaway embedded servers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from treadle.errors import NotFound

from .base import (
    CHUNK_BYTES,
    DEFAULT_PAGE_SIZE,
    ObjectInfo,
    ObjectPage,
    ObjectReader,
    check_announced_digest,
    decode_page_token,
    encode_page_token,
)


@dataclass(frozen=True)
class _Object:
    info: ObjectInfo
    data: bytes


class MemoryStore:
    """Objects live in a dict; an upload is buffered and published on success."""

    def __init__(self) -> None:
        self._objects: dict[str, _Object] = {}

    @property
    def uri(self) -> str:
        return "memory://"

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, sha256: str = "", owner: str = "") -> ObjectInfo:
        parts: list[bytes] = []
        digest = hashlib.sha256()
        async for chunk in chunks:
            digest.update(chunk)
            parts.append(chunk)
        data = b"".join(parts)
        check_announced_digest(key, sha256, digest.hexdigest(), len(data))
        info = ObjectInfo(key=key, size=len(data), sha256=digest.hexdigest(), owner=owner)
        self._objects[key] = _Object(info, data)
        return info

    async def get(self, key: str) -> ObjectReader:
        obj = self._lookup(key)
        return ObjectReader(obj.info, _chunked(obj.data))

    async def stat(self, key: str) -> ObjectInfo:
        return self._lookup(key).info

    async def list(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> ObjectPage:
        after = decode_page_token(page_token)
        keys = sorted(k for k in self._objects if k.startswith(prefix) and k > after)
        page = [self._objects[k].info for k in keys[:page_size]]
        more = len(keys) > page_size
        return ObjectPage(page, encode_page_token(page[-1].key) if more and page else "")

    async def delete(self, key: str) -> None:
        self._objects.pop(key, None)

    async def close(self) -> None:
        return None

    def _lookup(self, key: str) -> _Object:
        obj = self._objects.get(key)
        if obj is None:
            raise NotFound("artifact", key)
        return obj


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])
