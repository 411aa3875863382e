"""Async helpers for ArtifactService callers (the executor, other services, the CLI).

Both directions check SHA-256 end to end: an upload sends its digest in the
trailer and the server refuses a mismatch; a download compares the bytes it
received with the info the server sent first, and keeps nothing on mismatch.
Every call takes a deadline. Nothing here retries; callers decide.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import DataLoss
from treadle.grpcutil.status import error_from_rpc

from ._threads import blocking
from .stores.base import CHUNK_BYTES

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

StrPath = str | os.PathLike[str]


async def upload_file(
    stub: ArtifactServiceAsyncStub,
    header: artifacts_pb2.UploadHeader,
    path: StrPath,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> artifacts_pb2.ArtifactInfo:
    """Upload the file at path in CHUNK_BYTES chunks; return the stored object's info.

    metadata carries the step token (``x-treadle-step-token``) for executors.
    A refused call raises the server's domain error (treadle.errors: DataLoss if
    the bytes were damaged on the way, InvalidSpec, PermissionDenied, Unavailable
    for an unreachable server or a missed deadline); DataLoss is also raised if
    the server reports other bytes than were sent.
    """
    f = await blocking(FileIO, path, "rb")  # here, so a missing file fails before the call
    digest = hashlib.sha256()
    sent = 0
    started = False

    async def requests() -> AsyncIterator[artifacts_pb2.UploadArtifactRequest]:
        # grpc.aio drains this in its own task, so the generator owns the file from its start.
        nonlocal sent, started
        started = True
        try:
            yield artifacts_pb2.UploadArtifactRequest(header=header)
            while chunk := await blocking(f.read, CHUNK_BYTES):
                digest.update(chunk)
                sent += len(chunk)
                yield artifacts_pb2.UploadArtifactRequest(chunk=chunk)
        finally:
            f.close()
        yield artifacts_pb2.UploadArtifactRequest(trailer=artifacts_pb2.UploadTrailer(sha256=digest.hexdigest()))

    try:
        response = await stub.UploadArtifact(requests(), timeout=timeout, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc) from None
    finally:
        if not started:
            f.close()
    info = response.info
    if info.size_bytes != sent or info.sha256 != digest.hexdigest():
        raise DataLoss(
            f"artifact {info.key!r}: sent {sent} bytes with sha256 {digest.hexdigest()}, "
            f"but the server stored {info.size_bytes} bytes with sha256 {info.sha256}"
        )
    return info


async def download_to_file(
    stub: ArtifactServiceAsyncStub,
    key: str,
    dest: StrPath,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> artifacts_pb2.ArtifactInfo:
    """Download an object to dest (replaced if present); return its info.

    Bytes go to a temporary file next to dest, renamed into place only after
    the size and SHA-256 match the info the server sent first. On a mismatch
    the temporary file is removed and DataLoss is raised. A missing object
    raises NotFound; other refusals raise their domain error as upload_file does.
    """
    dest_path = Path(dest)
    tmp = dest_path.with_name(f".{dest_path.name}.partial-{os.urandom(6).hex()}")
    call = stub.DownloadArtifact(artifacts_pb2.DownloadArtifactRequest(key=key), timeout=timeout, metadata=metadata)
    f = await blocking(FileIO, tmp, "xb")
    try:
        info = await _receive(call, key, f)
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


async def _receive(
    call: AsyncIterable[artifacts_pb2.DownloadArtifactResponse], key: str, f: FileIO
) -> artifacts_pb2.ArtifactInfo:
    info: artifacts_pb2.ArtifactInfo | None = None
    digest = hashlib.sha256()
    received = 0
    async for message in call:
        if info is None:
            if message.WhichOneof("part") != "info":
                raise DataLoss(f"artifact {key!r}: the download did not start with the object's info")
            info = message.info
            continue
        chunk = message.chunk
        received += len(chunk)
        if received > info.size_bytes:
            raise DataLoss(f"artifact {key!r}: received more than the announced {info.size_bytes} bytes")
        digest.update(chunk)
        await blocking(_write_all, f, chunk)
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
