"""The ArtifactStore contract every storage driver implements.

Drivers are small and dumb on purpose (Argo's driver contract): they stream
bytes in and out, they never retry (callers decide), and they are handed keys
that keys.validate_key has already accepted.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from treadle.errors import DataLoss, InvalidSpec

CHUNK_BYTES = 1024 * 1024  # the wire chunk size too (treadle.grpcutil.channels.CHUNK_BYTES)
DEFAULT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object: its key, its size in bytes, its hex SHA-256, and the workflow that wrote it.

    Listings of stores whose list call carries no object metadata (S3) leave
    sha256 and owner empty; ``stat`` and ``get`` always fill sha256, and owner
    whenever the writer named one.
    """

    key: str
    size: int
    sha256: str
    owner: str = ""


@dataclass(frozen=True)
class ObjectPage:
    """One page of a listing, in key order. An empty next_page_token means the last page."""

    objects: list[ObjectInfo]
    next_page_token: str = ""


class ObjectReader(AsyncIterator[bytes]):
    """An open object: its info, and its bytes as chunks of at most CHUNK_BYTES.

    The info belongs to exactly the bytes this reader yields, even if the key
    is overwritten meanwhile. Close it (``aclose`` or ``async with``) when done,
    whether or not it was read to the end.
    """

    def __init__(
        self, info: ObjectInfo, chunks: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._on_close = on_close
        self._closed = False

    def __aiter__(self) -> ObjectReader:
        return self

    async def __anext__(self) -> bytes:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        closer = getattr(self._chunks, "aclose", None)
        try:
            if closer is not None:
                await closer()
        finally:
            if self._on_close is not None:
                await self._on_close()

    async def __aenter__(self) -> ObjectReader:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ArtifactStore(Protocol):
    """Streaming object storage, chosen by URI scheme (see stores.registry)."""

    @property
    def uri(self) -> str:
        """Where the store keeps its objects, for logs (never holds credentials)."""
        ...

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, sha256: str = "", owner: str = "") -> ObjectInfo:
        """Store the bytes of chunks under key and return what was stored.

        Bytes go to a temporary object that becomes visible under key, replacing any
        previous object, in one atomic step after chunks is exhausted. If iterating
        chunks raises (a caller's digest check fails, the client goes away), nothing
        becomes visible, the temporary object is removed, and the error propagates.

        sha256, when given, is the digest the caller holds chunks to (iterating
        them raises before the end otherwise); a store that must write the digest
        before the data may use it. The store still checks it and raises DataLoss,
        storing nothing, when the bytes differ. owner names the workflow that
        writes the object; it is kept with the object for artifact GC.
        """
        ...

    async def get(self, key: str) -> ObjectReader:
        """Open the object; raise NotFound when there is none. Memory use is a few chunks."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Size and SHA-256 without reading the data; raise NotFound when there is none."""
        ...

    async def list(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> ObjectPage:
        """Objects whose key starts with prefix, in key order, after page_token's position."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object. Removing a missing object succeeds."""
        ...

    async def close(self) -> None:
        """Release connections and background resources."""
        ...


def encode_page_token(last_key: str) -> str:
    """An opaque page token for stores that resume a listing after the last key returned."""
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    """The key encoded by encode_page_token; "" for no token. Raises InvalidSpec for garbage."""
    if not token:
        return ""
    try:
        key = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key or encode_page_token(key) != token:
        raise InvalidSpec("is not a token from a previous listing", field="page_token")
    return key


def check_announced_digest(key: str, announced: str, actual: str, size: int) -> None:
    """Raise DataLoss when a digest announced before an upload differs from the bytes' digest."""
    if announced and announced.lower() != actual:
        raise DataLoss(
            f"artifact {key!r}: received {size} bytes with sha256 {actual}, "
            f"but {announced} was announced; nothing was stored"
        )
