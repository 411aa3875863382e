"""Async helpers for ArtifactService callers (the executor, other services, the CLI).

Both directions check SHA-256 end to end: an upload sends its digest in the
trailer and the server refuses a mismatch; a download compares the bytes it
received with the info the server sent first, and keeps nothing on mismatch.
Every call takes a deadline. Nothing here retries; callers decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import grpc

from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import DataLoss, InvalidSpec
from treadle.grpcutil.status import error_from_rpc

from ._threads import blocking
from .stores.base import CHUNK_BYTES

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

    UploadCall = grpc.aio.StreamUnaryCall[artifacts_pb2.UploadArtifactRequest, artifacts_pb2.UploadArtifactResponse]

StrPath = str | os.PathLike[str]
# Initial metadata by which the server accepts an upload's header, so the client starts sending data.
UPLOAD_READY_METADATA = "x-treadle-upload-ready"


async def upload_file(
    stub: ArtifactServiceAsyncStub,
    header: artifacts_pb2.UploadHeader,
    path: StrPath,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
    announce_digest: bool = True,
) -> artifacts_pb2.ArtifactInfo:
    """Upload the file at path; return the stored object's info.

    A file of at most CHUNK_BYTES goes in one PutArtifact call; a larger one is streamed in
    CHUNK_BYTES chunks through UploadArtifact.

    metadata carries the step token (``x-treadle-step-token``) for executors.
    With announce_digest the file is hashed first and its digest sent in the
    header, which spares an S3 repository a server-side copy of the object.
    A refused call raises the server's domain error (treadle.errors: DataLoss if
    the bytes were damaged on the way, InvalidSpec, PermissionDenied, Unavailable
    for an unreachable server or a missed deadline); DataLoss is also raised if
    the server reports other bytes than were sent, or the file changed meanwhile.
    """
    f = await blocking(FileIO, path, "rb")  # here, so a missing file fails before the call
    try:
        if os.fstat(f.fileno()).st_size <= CHUNK_BYTES:
            data = await blocking(read_small, f)
            if data is not None:
                return await put_small(stub, header, data, timeout=timeout, metadata=metadata)
        if announce_digest:
            sent = artifacts_pb2.UploadHeader()
            sent.CopyFrom(header)
            sent.sha256 = await blocking(_sha256_of, f)
            header = sent
        return await _upload(stub, header, _file_chunks(f), timeout=timeout, metadata=metadata)
    finally:
        f.close()


async def upload_bytes(
    stub: ArtifactServiceAsyncStub,
    header: artifacts_pb2.UploadHeader,
    data: bytes,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> artifacts_pb2.ArtifactInfo:
    """Upload data held in memory (large parameter values and results); see upload_file."""
    sent = artifacts_pb2.UploadHeader()
    sent.CopyFrom(header)
    sent.sha256 = hashlib.sha256(data).hexdigest()
    return await _upload(stub, sent, _memory_chunks(data), timeout=timeout, metadata=metadata)


async def put_small(
    stub: ArtifactServiceAsyncStub,
    header: artifacts_pb2.UploadHeader,
    data: bytes,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> artifacts_pb2.ArtifactInfo:
    """Store data of at most CHUNK_BYTES with one PutArtifact call: one round trip instead of a stream's."""
    request = put_request(header, data)
    sha256 = request.sha256
    try:
        response = await stub.PutArtifact(request, timeout=timeout, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc) from None
    info = response.info
    if info.size_bytes != len(data) or info.sha256 != sha256:
        raise DataLoss(
            f"artifact {info.key!r}: sent {len(data)} bytes with sha256 {sha256}, "
            f"but the server stored {info.size_bytes} bytes with sha256 {info.sha256}"
        )
    return info


async def _upload(
    stub: ArtifactServiceAsyncStub,
    header: artifacts_pb2.UploadHeader,
    chunks: AsyncIterator[bytes],
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...],
) -> artifacts_pb2.ArtifactInfo:
    """Send the header, wait for the server to accept it, then stream chunks and the trailer.

    Waiting for the server's initial metadata before any data means a refused
    header (permission, key, repository) ends the call before the client
    writes again, so the caller gets the server's status: grpc.aio reports a
    write that races with the end of a call as INTERNAL instead (grpc#36066).
    """
    digest = hashlib.sha256()
    sent = 0
    call = stub.UploadArtifact(timeout=timeout, metadata=metadata)
    try:
        if await _write(call, artifacts_pb2.UploadArtifactRequest(header=header)) and await _accepted(call):
            async for chunk in chunks:
                digest.update(chunk)
                sent += len(chunk)
                if not await _write(call, artifacts_pb2.UploadArtifactRequest(chunk=chunk)):
                    break
            else:
                trailer = artifacts_pb2.UploadTrailer(sha256=digest.hexdigest())
                if await _write(call, artifacts_pb2.UploadArtifactRequest(trailer=trailer)):
                    await call.done_writing()
        response = await call
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc) from None
    except BaseException:
        call.cancel()
        raise
    info = response.info
    if header.sha256 and header.sha256 != digest.hexdigest():
        raise DataLoss(f"artifact {info.key!r}: the file changed while it was uploaded")
    if info.size_bytes != sent or info.sha256 != digest.hexdigest():
        raise DataLoss(
            f"artifact {info.key!r}: sent {sent} bytes with sha256 {digest.hexdigest()}, "
            f"but the server stored {info.size_bytes} bytes with sha256 {info.sha256}"
        )
    return info


async def _accepted(call: UploadCall) -> bool:
    """Whether the server accepted the header (its initial metadata says so; a refusal has none)."""
    metadata = await call.initial_metadata()
    return any(key == UPLOAD_READY_METADATA for key, _ in metadata or ())


async def _write(call: UploadCall, request: artifacts_pb2.UploadArtifactRequest) -> bool:
    """Send one message; False when the server has ended the call already (awaiting the call tells why)."""
    if call.done():
        return False
    try:
        await call.write(request)
    except asyncio.InvalidStateError:
        return False
    return True


def put_request(header: artifacts_pb2.UploadHeader, data: bytes) -> artifacts_pb2.PutArtifactRequest:
    """The PutArtifact message for data (at most CHUNK_BYTES): header, data and its digest."""
    return artifacts_pb2.PutArtifactRequest(header=header, data=data, sha256=hashlib.sha256(data).hexdigest())


def read_small(f: FileIO, limit: int = CHUNK_BYTES) -> bytes | None:
    """The rest of the file when it holds at most limit bytes; else None, with f back where it was."""
    start = f.tell()
    data = f.read(limit + 1)
    if len(data) > limit:
        f.seek(start)
        return None
    return data


def _sha256_of(f: FileIO) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK_BYTES):
        digest.update(chunk)
    f.seek(0)
    return digest.hexdigest()


async def _file_chunks(f: FileIO) -> AsyncIterator[bytes]:
    while chunk := await blocking(f.read, CHUNK_BYTES):
        yield chunk


async def _memory_chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


async def download_to_file(
    stub: ArtifactServiceAsyncStub,
    key: str,
    dest: StrPath,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
    repository: str = "",
) -> artifacts_pb2.ArtifactInfo:
    """Download an object (of a named repository, or the default) to dest (replaced if present); return its info.

    Bytes go to a temporary file next to dest, renamed into place only after
    the size and SHA-256 match the info the server sent first. On a mismatch
    the temporary file is removed and DataLoss is raised. A missing object
    raises NotFound; other refusals raise their domain error as upload_file does.
    """
    dest_path = Path(dest)
    tmp = dest_path.with_name(f".{dest_path.name}.partial-{os.urandom(6).hex()}")
    request = artifacts_pb2.DownloadArtifactRequest(key=key, repository=repository)
    call = stub.DownloadArtifact(request, timeout=timeout, metadata=metadata)
    f = await blocking(FileIO, tmp, "xb")
    try:
        info = await _receive(call, key, _FileSink(f))
        await blocking(os.fsync, f.fileno())
        f.close()
        await blocking(os.replace, tmp, dest_path)
    except BaseException as exc:
        call.cancel()
        f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, grpc.aio.AioRpcError):
            raise error_from_rpc(exc) from None
        raise
    return info


async def download_bytes(
    stub: ArtifactServiceAsyncStub,
    key: str,
    *,
    repository: str = "",
    timeout: float,
    max_bytes: int,
    metadata: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """An object's bytes in memory (large parameter values and results), checked like download_to_file.

    Raises InvalidSpec for an object larger than max_bytes, before reading it.
    """
    request = artifacts_pb2.DownloadArtifactRequest(key=key, repository=repository)
    call = stub.DownloadArtifact(request, timeout=timeout, metadata=metadata)
    buffer = _MemorySink(max_bytes, key)
    try:
        await _receive(call, key, buffer)
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc) from None
    except BaseException:
        call.cancel()
        raise
    return buffer.value()


class _Sink(Protocol):
    def announce(self, size: int) -> None: ...

    async def write(self, chunk: bytes) -> None: ...


class _MemorySink:
    def __init__(self, max_bytes: int, key: str) -> None:
        self._parts: list[bytes] = []
        self._max = max_bytes
        self._key = key

    def announce(self, size: int) -> None:
        if size > self._max:
            raise InvalidSpec(f"artifact {self._key!r} holds {size} bytes, more than the {self._max} allowed here")

    async def write(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    def value(self) -> bytes:
        return b"".join(self._parts)


class _FileSink:
    def __init__(self, f: FileIO) -> None:
        self._f = f

    def announce(self, size: int) -> None:
        return None

    async def write(self, chunk: bytes) -> None:
        await blocking(_write_all, self._f, chunk)


async def _receive(
    call: AsyncIterable[artifacts_pb2.DownloadArtifactResponse], key: str, sink: _Sink
) -> artifacts_pb2.ArtifactInfo:
    info: artifacts_pb2.ArtifactInfo | None = None
    digest = hashlib.sha256()
    received = 0
    async for message in call:
        if info is None:
            if message.WhichOneof("part") != "info":
                raise DataLoss(f"artifact {key!r}: the download did not start with the object's info")
            info = message.info
            sink.announce(info.size_bytes)
            continue
        chunk = message.chunk
        received += len(chunk)
        if received > info.size_bytes:
            raise DataLoss(f"artifact {key!r}: received more than the announced {info.size_bytes} bytes")
        digest.update(chunk)
        await sink.write(chunk)
    if info is None:
        raise DataLoss(f"artifact {key!r}: the download ended before the object's info")
    if received != info.size_bytes or digest.hexdigest() != info.sha256:
        raise DataLoss(
            f"artifact {key!r}: received {received} bytes with sha256 {digest.hexdigest()}, "
            f"expected {info.size_bytes} bytes with sha256 {info.sha256}"
        )
    return info


def _write_all(f: FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[f.write(view) or 0 :]
