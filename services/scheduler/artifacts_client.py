"""ArtifactService over gRPC, as the scheduler uses it (artifact_calls.ArtifactCalls)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.errors import DataLoss, Unavailable
from treadle.grpcutil.channels import open_channel
from treadle.services.artifacts.client import download_bytes
from treadle.services.artifacts.gc_client import run_artifact_gc
from treadle.services.artifacts.gc_plan import GcPlan
from treadle.services.artifacts.step_io import transfer_timeout
from treadle.services.artifacts.values import MAX_VALUE_BYTES
from treadle.workflow.v1 import workflow_pb2

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub


class GrpcArtifactCalls:
    """Opens its channel once the scheduler knows ArtifactService's address (connect)."""

    def __init__(self) -> None:
        self._channel: grpc.aio.Channel | None = None
        self._stub: ArtifactServiceAsyncStub | None = None

    def connect(self, address: str) -> None:
        if address and self._channel is None:
            self._channel = open_channel(address)
            self._stub = artifacts_pb2_grpc.ArtifactServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._stub = None

    async def load_value(self, ref: dict[str, Any]) -> str:
        stored = json_format.ParseDict(ref, workflow_pb2.StoredArtifact(), ignore_unknown_fields=True)
        data = await download_bytes(
            self._require(),
            stored.key,
            repository=stored.repository,
            timeout=transfer_timeout(stored.size_bytes),
            max_bytes=MAX_VALUE_BYTES,
        )
        if stored.sha256 and hashlib.sha256(data).hexdigest() != stored.sha256:
            raise DataLoss(f"large value {stored.key!r} no longer matches the digest its step reported")
        return data.decode()

    async def run_gc(self, plan: GcPlan) -> int:
        return (await run_artifact_gc(self._require(), plan)).deleted

    def _require(self) -> ArtifactServiceAsyncStub:
        if self._stub is None:
            raise Unavailable("no address is configured for the artifacts service")
        return self._stub
