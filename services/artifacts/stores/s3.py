"""An ArtifactStore on S3 (AWS S3, MinIO, or any S3-compatible server) through the ``minio`` client.

Every object carries its SHA-256 and its writer as user metadata
(``x-amz-meta-sha256``, ``x-amz-meta-treadle-workflow``), so ``stat`` is one
HEAD and ``get`` takes the digest from the same response as the bytes.

S3 fixes an object's metadata when the upload starts, but a streamed upload
knows its digest only at the end. So:

- an object smaller than one part is buffered and written with one PUT;
- an upload whose digest was announced up front streams as a multipart upload
  straight to its key;
- any other upload streams to a temporary object under ``.treadle/tmp/``, then
  is copied server-side to its key with the digest as metadata.

A multipart upload becomes visible only when it is completed, after the chunks
are exhausted (and so verified by the caller); on any error it is aborted.
Memory is bounded by the part size times (parts in flight + 1), in buffers
reused from part to part (s3_parts.py). Parts start at
``part_size`` and double every 1,000 parts, so S3's 10,000-part limit is never
reached before its 5 TiB object limit.

The minio client must be built without retries (``s3_config.open_s3_store``
does): drivers never retry, their callers do.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import io
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Part

from treadle.errors import DataLoss, FailedPrecondition

from .._threads import blocking
from ..keys import RESERVED_PREFIX, validate_key
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
from .s3_errors import s3_errors
from .s3_parts import MAX_PART_BYTES, PartBuffers, PartReader, part_size

log = logging.getLogger(__name__)

SHA256_META = "x-amz-meta-sha256"
OWNER_META = "x-amz-meta-treadle-workflow"
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
DEFAULT_PART_BYTES = 16 * 1024 * 1024
DEFAULT_PARTS_IN_FLIGHT = 2
_TMP_PREFIX = f"{RESERVED_PREFIX}/tmp/"
Metadata = dict[str, str | list[str] | tuple[str]]  # what minio's put and copy take


class S3Store:
    """Objects in one bucket, under an optional key prefix (``""`` or ending with ``/``)."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        prefix: str = "",
        location: str = "",
        part_size: int = DEFAULT_PART_BYTES,
        parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if prefix:
            validate_key(prefix[:-1], field="prefix")
        if not MIN_PART_BYTES <= part_size <= MAX_PART_BYTES:
            raise ValueError(f"part size must be {MIN_PART_BYTES} to {MAX_PART_BYTES} bytes, got {part_size}")
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._location = location or f"s3://{bucket}/{prefix}"
        self._part_size = part_size
        self._parts_in_flight = max(1, parts_in_flight)

    @property
    def uri(self) -> str:
        return self._location

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, sha256: str = "", owner: str = "") -> ObjectInfo:
        name = self._name(key)
        reader = PartReader(chunks)
        first = await reader.read_bytes(self._part_size)
        if reader.exhausted:
            check_announced_digest(key, sha256, reader.sha256, reader.size)
            info = ObjectInfo(key=key, size=reader.size, sha256=reader.sha256, owner=owner)
            await blocking(self._put_small, name, first, info)
            return info
        upload = _Multipart(key, reader, [first])
        del first  # the upload hands it to its sender, which drops it once sent
        target = name if sha256 else f"{self.prefix}{_TMP_PREFIX}{secrets.token_hex(12)}"
        metadata = _metadata(sha256.lower(), owner) if sha256 else {}
        with s3_errors(key):
            await self._multipart(target, upload, metadata, sha256)
        try:
            check_announced_digest(key, sha256, reader.sha256, reader.size)
            info = ObjectInfo(key=key, size=reader.size, sha256=reader.sha256, owner=owner)
            if not sha256:
                await blocking(self._publish_copy, target, name, info)
        finally:
            if target != name:
                await self._discard(target)
        return info

    async def get(self, key: str) -> ObjectReader:
        return await self.open(self._name(key), key)

    async def open(self, name: str, key: str, *, require_digest: bool = True) -> ObjectReader:
        """Open the object called name in the bucket; key names it in messages and infos.

        Without require_digest, an object that another tool wrote (no recorded
        SHA-256) opens too, with an empty sha256: imports read such objects.
        """
        with s3_errors(key):
            response = await blocking(self._client.get_object, self.bucket, name)
        try:
            headers = response.headers
            size = int(headers.get("content-length", "0"))
            if require_digest or _meta(headers, SHA256_META):
                info = _info(key, size, headers)
            else:
                info = ObjectInfo(key=key, size=size, sha256="", owner=_meta(headers, OWNER_META))
        except BaseException:
            response.close()
            response.release_conn()
            raise

        async def close() -> None:
            response.close()
            await blocking(response.release_conn)

        return ObjectReader(info, _read_body(response, info), on_close=close)

    @property
    def client(self) -> Minio:
        return self._client

    def with_bucket(self, bucket: str) -> S3Store:
        """A store for another bucket of the same endpoint, signing in the same way."""
        return S3Store(self._client, bucket, part_size=self._part_size, parts_in_flight=self._parts_in_flight)

    async def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        with s3_errors(key):
            found = await blocking(self._client.stat_object, self.bucket, name)
        return _info(key, found.size or 0, found.metadata or {})

    async def list(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> ObjectPage:
        after = decode_page_token(page_token)
        with s3_errors(prefix or "/"):
            return await blocking(self._list_sync, prefix, page_size, after)

    async def delete(self, key: str) -> None:
        name = self._name(key)
        with s3_errors(key):
            await blocking(self._client.remove_object, self.bucket, name)

    async def close(self) -> None:
        return None

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _put_small(self, name: str, data: bytes, info: ObjectInfo) -> None:
        with s3_errors(info.key):
            self._client.put_object(
                self.bucket, name, io.BytesIO(data), len(data), metadata=_metadata(info.sha256, info.owner)
            )

    async def _multipart(self, name: str, upload: _Multipart, metadata: Metadata, announced: str) -> None:
        """Upload every part (at most parts_in_flight at once); complete only after the digest checks pass."""
        headers: dict[str, Any] = {"Content-Type": "application/octet-stream", **metadata}
        upload_id: str = await blocking(self._client._create_multipart_upload, self.bucket, name, headers)
        parts: builtins.list[tuple[int, str]] = []
        in_flight: set[asyncio.Task[None]] = set()
        buffers = PartBuffers()

        async def send(number: int, data: bytes | bytearray | memoryview, buffer: bytearray | None) -> None:
            # minio's signature says bytes; it and urllib3 only hash, measure and send it, so any buffer works.
            body = cast(bytes, data)
            etag = await blocking(self._client._upload_part, self.bucket, name, body, None, upload_id, number)
            parts.append((number, etag))
            if buffer is not None:
                buffers.give(buffer)

        try:
            in_flight.add(asyncio.create_task(send(1, upload.first.pop(), None)))
            number = 1
            while not upload.reader.exhausted:
                while len(in_flight) >= self._parts_in_flight:
                    done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    in_flight.difference_update(done)
                    for task in done:
                        task.result()
                number += 1
                buffer = buffers.take(part_size(self._part_size, number))
                filled = await upload.reader.read_into(buffer)
                if not filled:
                    break  # the previous part was the last: the size was a multiple of the part size
                data = memoryview(buffer)[:filled] if filled < len(buffer) else buffer
                in_flight.add(asyncio.create_task(send(number, data, buffer)))
            await asyncio.gather(*in_flight)
            in_flight.clear()
            check_announced_digest(upload.key, announced, upload.reader.sha256, upload.reader.size)  # before visible
            await blocking(self._complete, name, upload_id, sorted(parts))
        except BaseException:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.shield(blocking(self._client._abort_multipart_upload, self.bucket, name, upload_id))
            raise

    def _complete(self, name: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        self._client._complete_multipart_upload(
            self.bucket, name, upload_id, [Part(number, etag) for number, etag in parts]
        )

    def _publish_copy(self, source: str, name: str, info: ObjectInfo) -> None:
        with s3_errors(info.key):
            self._client.copy_object(
                self.bucket,
                name,
                CopySource(self.bucket, source),
                metadata=_metadata(info.sha256, info.owner),
                metadata_directive=REPLACE,
            )

    async def _discard(self, name: str) -> None:
        try:
            await asyncio.shield(blocking(self._client.remove_object, self.bucket, name))
        except Exception as exc:  # an orphan under .treadle/tmp/ costs space, not correctness
            log.warning("could not remove temporary object %s: %s", name, type(exc).__name__)

    def _list_sync(self, prefix: str, page_size: int, after: str) -> ObjectPage:
        found: builtins.list[ObjectInfo] = []
        more = False
        for key, size, metadata in self._walk(prefix, after):
            if len(found) == page_size:
                more = True
                break
            sha256, owner = _meta(metadata, SHA256_META), _meta(metadata, OWNER_META)
            found.append(ObjectInfo(key=key, size=size, sha256=sha256, owner=owner))
        return ObjectPage(found, encode_page_token(found[-1].key) if more and found else "")

    def _walk(self, prefix: str, after: str) -> Iterator[tuple[str, int, Any]]:
        objects = self._client.list_objects(
            self.bucket,
            prefix=self.prefix + prefix,
            recursive=True,
            start_after=self.prefix + after if after else None,
            include_user_meta=True,  # MinIO returns metadata in listings; AWS ignores the flag
        )
        for obj in objects:
            key = (obj.object_name or "")[len(self.prefix) :]
            if key.startswith(RESERVED_PREFIX):
                continue
            try:
                validate_key(key)
            except Exception:
                continue  # an object that another tool named in a way keys cannot be
            yield key, obj.size or 0, obj.metadata or {}


@dataclass
class _Multipart:
    """An upload past its first part: the reader, and the first part until it is handed to its sender."""

    key: str
    reader: PartReader
    first: builtins.list[bytes]


def _metadata(sha256: str, owner: str) -> Metadata:
    metadata: Metadata = {SHA256_META: sha256}
    if owner:
        metadata[OWNER_META] = owner
    return metadata


def _meta(headers: Any, name: str) -> str:
    """A metadata value from response headers or a listing's metadata, whatever the case of its name."""
    wanted = (name, name.removeprefix("x-amz-meta-"))
    for header, value in (headers or {}).items():
        if str(header).lower() in wanted:
            return str(value)
    return ""


def _info(key: str, size: int, headers: Any) -> ObjectInfo:
    sha256 = _meta(headers, SHA256_META)
    if not sha256:
        raise FailedPrecondition(
            f"artifact {key!r} has no recorded SHA-256 (it was not written by treadle); import it as an s3 input",
            subject=key,
        )
    return ObjectInfo(key=key, size=size, sha256=sha256, owner=_meta(headers, OWNER_META))


async def _read_body(response: Any, info: ObjectInfo) -> AsyncIterator[bytes]:
    """The body in chunks, reading the next chunk from S3 while the caller sends the current one."""
    remaining = info.size
    ahead: asyncio.Future[bytes] = asyncio.ensure_future(blocking(response.read, CHUNK_BYTES))
    try:
        with s3_errors(info.key):
            while chunk := await ahead:
                ahead = asyncio.ensure_future(blocking(response.read, CHUNK_BYTES))
                remaining -= len(chunk)
                if remaining < 0:
                    raise DataLoss(f"artifact {info.key!r}: S3 sent more than the {info.size} bytes it announced")
                yield chunk
    finally:
        if not ahead.done():
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)  # the read in its thread ends before the close
    if remaining:
        raise DataLoss(f"artifact {info.key!r}: S3 ended the object {remaining} bytes early")
