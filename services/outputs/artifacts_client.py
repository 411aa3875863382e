"""ArtifactService as OutputService sees it: PutArtifact over gRPC (in-process when co-hosted), with a deadline."""

from __future__ import annotations

import grpc

from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA
from treadle.grpcutil import inprocess
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import error_from_rpc

ARTIFACT_SERVICE = artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"].full_name


class GrpcLogStore:
    def __init__(self, channel: grpc.aio.Channel, address: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        remote = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        self._stub = inprocess.stub(address, ARTIFACT_SERVICE, remote, {"PutArtifact"})
        self._timeout = timeout

    async def put(self, request: artifacts_pb2.PutArtifactRequest, token: str | None) -> artifacts_pb2.ArtifactInfo:
        metadata = ((STEP_TOKEN_METADATA, token),) if token else ()
        try:
            response = await self._stub.PutArtifact(request, timeout=self._timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        info: artifacts_pb2.ArtifactInfo = response.info
        return info
