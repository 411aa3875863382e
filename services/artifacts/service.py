"""The ArtifactService servicer: convert messages, call the repository, map errors (by @grpc_errors).

Memory stays bounded by a few chunks whatever the object size: an upload
reads one message, writes it to the store, then reads the next; a download
yields one chunk at a time and grpc.aio's flow control holds the next back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA
from treadle.errors import InvalidSpec
from treadle.grpcutil.status import grpc_errors

from .keys import ArtifactTarget
from .repository import ArtifactRepository, UploadPart, UploadTrailer
from .stores.base import ObjectInfo

SERVICE_NAME: str = artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class ArtifactServicer(artifacts_pb2_grpc.ArtifactServiceServicer):
    def __init__(self, repository: ArtifactRepository) -> None:
        self._repository = repository

    @grpc_errors
    async def UploadArtifact(
        self, request_iterator: AsyncIterator[artifacts_pb2.UploadArtifactRequest], context: Context
    ) -> artifacts_pb2.UploadArtifactResponse:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidSpec("the first message of an upload must be its header", field="header")
        h = first.header
        target = ArtifactTarget(h.workflow, h.pod_name, h.artifact_name, h.suffix)
        info = await self._repository.upload(target, _upload_parts(requests), token=_token(context))
        return artifacts_pb2.UploadArtifactResponse(info=to_proto(info))

    @grpc_errors
    async def DownloadArtifact(
        self, request: artifacts_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[artifacts_pb2.DownloadArtifactResponse]:
        async with await self._repository.download(request.key) as reader:
            yield artifacts_pb2.DownloadArtifactResponse(info=to_proto(reader.info))
            async for chunk in reader:
                yield artifacts_pb2.DownloadArtifactResponse(chunk=chunk)

    @grpc_errors
    async def StatArtifact(
        self, request: artifacts_pb2.StatArtifactRequest, context: Context
    ) -> artifacts_pb2.StatArtifactResponse:
        return artifacts_pb2.StatArtifactResponse(info=to_proto(await self._repository.stat(request.key)))

    @grpc_errors
    async def ListArtifacts(
        self, request: artifacts_pb2.ListArtifactsRequest, context: Context
    ) -> artifacts_pb2.ListArtifactsResponse:
        page = await self._repository.list(request.prefix, request.page_size, request.page_token)
        return artifacts_pb2.ListArtifactsResponse(
            artifacts=[to_proto(info) for info in page.objects], next_page_token=page.next_page_token
        )

    @grpc_errors
    async def DeleteArtifact(
        self, request: artifacts_pb2.DeleteArtifactRequest, context: Context
    ) -> artifacts_pb2.DeleteArtifactResponse:
        await self._repository.delete(request.key, token=_token(context))
        return artifacts_pb2.DeleteArtifactResponse()


def to_proto(info: ObjectInfo) -> artifacts_pb2.ArtifactInfo:
    return artifacts_pb2.ArtifactInfo(key=info.key, size_bytes=info.size, sha256=info.sha256)


async def _upload_parts(requests: AsyncIterator[artifacts_pb2.UploadArtifactRequest]) -> AsyncIterator[UploadPart]:
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


def _token(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == STEP_TOKEN_METADATA:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
