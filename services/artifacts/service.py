"""The ArtifactService servicer: convert messages, call the repository, map errors (by @grpc_errors).

Memory stays bounded by a few chunks whatever the object size: an upload
reads one message, writes it to the store, then reads the next; a download
yields one chunk at a time and grpc.aio's flow control holds the next back.
(The S3 store buffers whole parts; see stores/s3.py.)
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA
from treadle.errors import InvalidSpec, PermissionDenied
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import grpc_errors
from treadle.telemetry import metrics, names

from .catalog import RepositoryCatalog
from .client import UPLOAD_READY_METADATA
from .gc import delete_workflow_objects
from .importer import MAX_IMPORT_SECONDS, Importer
from .keys import ArtifactTarget
from .repository import ArtifactRepository, UploadPart, UploadTrailer
from .stores.base import CHUNK_BYTES, ObjectInfo

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

SERVICE_NAME: str = artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class ArtifactServicer(artifacts_pb2_grpc.ArtifactServiceServicer):
    def __init__(
        self, repositories: RepositoryCatalog | ArtifactRepository, *, importer: Importer | None = None
    ) -> None:
        if isinstance(repositories, ArtifactRepository):
            repositories = RepositoryCatalog.single(repositories)
        self._catalog = repositories
        self._importer = importer or Importer(repositories)

    @grpc_errors
    async def UploadArtifact(
        self, request_iterator: AsyncIterator[artifacts_pb2.UploadArtifactRequest], context: Context
    ) -> artifacts_pb2.UploadArtifactResponse:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidSpec("the first message of an upload must be its header", field="header")
        h = first.header
        repository = self._catalog.get(h.repository)
        target = ArtifactTarget(h.workflow, h.pod_name, h.artifact_name, h.suffix)
        info = await repository.upload(
            target, _upload_parts(requests, context), token=_token(context), key=h.key, sha256=h.sha256
        )
        metrics.artifact_bytes().add(info.size, {names.DIRECTION: "in"})
        return artifacts_pb2.UploadArtifactResponse(info=to_proto(info, repository.name))

    @grpc_errors
    async def PutArtifact(
        self, request: artifacts_pb2.PutArtifactRequest, context: Context
    ) -> artifacts_pb2.PutArtifactResponse:
        if len(request.data) > CHUNK_BYTES:
            raise InvalidSpec(f"holds {len(request.data)} bytes; PutArtifact takes at most {CHUNK_BYTES}", field="data")
        if not _SHA256_HEX.fullmatch(request.sha256.lower()):
            raise InvalidSpec("must be the data's hex SHA-256", field="sha256")
        h = request.header
        repository = self._catalog.get(h.repository)
        target = ArtifactTarget(h.workflow, h.pod_name, h.artifact_name, h.suffix)
        info = await repository.upload(
            target, _whole(request.data, request.sha256), token=_token(context), key=h.key, sha256=h.sha256
        )
        metrics.artifact_bytes().add(info.size, {names.DIRECTION: "in"})
        return artifacts_pb2.PutArtifactResponse(info=to_proto(info, repository.name))

    @grpc_errors
    async def DownloadArtifact(
        self, request: artifacts_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[artifacts_pb2.DownloadArtifactResponse]:
        repository = self._catalog.get(request.repository)
        async with await repository.download(request.key) as reader:
            yield artifacts_pb2.DownloadArtifactResponse(info=to_proto(reader.info, repository.name))
            async for chunk in reader:
                metrics.artifact_bytes().add(len(chunk), {names.DIRECTION: "out"})
                yield artifacts_pb2.DownloadArtifactResponse(chunk=chunk)

    @grpc_errors
    async def StatArtifact(
        self, request: artifacts_pb2.StatArtifactRequest, context: Context
    ) -> artifacts_pb2.StatArtifactResponse:
        repository = self._catalog.get(request.repository)
        return artifacts_pb2.StatArtifactResponse(info=to_proto(await repository.stat(request.key), repository.name))

    @grpc_errors
    async def ListArtifacts(
        self, request: artifacts_pb2.ListArtifactsRequest, context: Context
    ) -> artifacts_pb2.ListArtifactsResponse:
        repository = self._catalog.get(request.repository)
        page = await repository.list(request.prefix, request.page_size, request.page_token)
        return artifacts_pb2.ListArtifactsResponse(
            artifacts=[to_proto(info, repository.name) for info in page.objects], next_page_token=page.next_page_token
        )

    @grpc_errors
    async def DeleteArtifact(
        self, request: artifacts_pb2.DeleteArtifactRequest, context: Context
    ) -> artifacts_pb2.DeleteArtifactResponse:
        await self._catalog.get(request.repository).delete(request.key, token=_token(context))
        return artifacts_pb2.DeleteArtifactResponse()

    @grpc_errors
    async def ImportArtifact(
        self, request: artifacts_pb2.ImportArtifactRequest, context: Context
    ) -> artifacts_pb2.ImportArtifactResponse:
        imported = await self._importer.import_artifact(
            request.repository,
            request.workflow,
            request.pod_name,
            request.artifact,
            token=_token(context),
            timeout=_time_left(context, MAX_IMPORT_SECONDS),
        )
        return artifacts_pb2.ImportArtifactResponse(
            info=to_proto(imported.info, imported.repository), archive=imported.archive
        )

    @grpc_errors
    async def DeleteWorkflowArtifacts(
        self, request: artifacts_pb2.DeleteWorkflowArtifactsRequest, context: Context
    ) -> artifacts_pb2.DeleteWorkflowArtifactsResponse:
        if _token(context) is not None:
            raise PermissionDenied(
                "artifact GC is for trusted callers; a step token cannot delete a workflow's objects"
            )
        if not request.workflow:
            raise InvalidSpec("must not be empty", field="workflow")
        # Stop a little before the caller's deadline so that the answer (with complete=False) still arrives.
        budget = max(0.0, _time_left(context, DEFAULT_TIMEOUT) * 0.8)
        result = await delete_workflow_objects(
            self._catalog.get(request.repository),
            request.workflow,
            request.keys,
            all_under_prefix=request.all_under_prefix,
            deadline=time.monotonic() + budget,
            keep_keys=request.keep_keys,
        )
        return artifacts_pb2.DeleteWorkflowArtifactsResponse(
            deleted=result.deleted, kept_keys=result.kept_keys, complete=result.complete
        )

    @grpc_errors
    async def GetRepository(
        self, request: artifacts_pb2.GetRepositoryRequest, context: Context
    ) -> artifacts_pb2.GetRepositoryResponse:
        described = self._catalog.describe(request.name)
        return artifacts_pb2.GetRepositoryResponse(
            name=described.name, location=described.location, key_format=described.key_format
        )


def to_proto(info: ObjectInfo, repository: str = "") -> artifacts_pb2.ArtifactInfo:
    return artifacts_pb2.ArtifactInfo(key=info.key, size_bytes=info.size, sha256=info.sha256, repository=repository)


async def _upload_parts(
    requests: AsyncIterator[artifacts_pb2.UploadArtifactRequest], context: Context
) -> AsyncIterator[UploadPart]:
    """The upload's data parts. Asked for its first part only once the header passed every check,
    it then sends the initial metadata that tells the client to start sending data (client.py)."""
    await context.send_initial_metadata(((UPLOAD_READY_METADATA, "1"),))
    async for request in requests:
        part = request.WhichOneof("part")
        if part == "chunk":
            yield request.chunk
        elif part == "trailer":
            yield UploadTrailer(request.trailer.sha256)
        elif part == "header":
            raise InvalidSpec("an upload has exactly one header, as its first message", field="header")
        else:
            raise InvalidSpec("an upload message must carry a header, a chunk or a trailer", field="part")


async def _whole(data: bytes, sha256: str) -> AsyncIterator[UploadPart]:
    """A PutArtifact's data as an upload's parts: one chunk (none when empty), then the trailer."""
    if data:
        yield data
    yield UploadTrailer(sha256)


def _token(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == STEP_TOKEN_METADATA:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _time_left(context: Context, default: float) -> float:
    """Seconds until the call's deadline; default when the caller set none."""
    remaining = context.time_remaining()
    return default if remaining is None else min(float(remaining), default)
