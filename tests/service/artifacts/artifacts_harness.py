"""An ArtifactService on a real grpc.aio server on loopback, with its catalog, for the artifact tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from treadle.artifacts.v1 import artifacts_pb2 as pb
from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA, StepTokens
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import create_server
from treadle.services.artifacts.catalog import RepositoryCatalog
from treadle.services.artifacts.setup import ArtifactsApp

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

MiB = 1024 * 1024
TIMEOUT = 60.0
TOKENS = StepTokens(b"0123456789abcdef0123456789abcdef")


def step_metadata(workflow: str, node: str = "node-1") -> tuple[tuple[str, str], ...]:
    return ((STEP_TOKEN_METADATA, TOKENS.issue(workflow, node, 0)),)


@dataclass
class Served:
    stub: ArtifactServiceAsyncStub
    catalog: RepositoryCatalog
    address: str


@contextlib.asynccontextmanager
async def serving(catalog: RepositoryCatalog) -> AsyncIterator[Served]:
    app = ArtifactsApp(catalog)
    server = await create_server([app.binding])
    channel = open_channel(server.address)
    try:
        yield Served(artifacts_pb2_grpc.ArtifactServiceStub(channel), catalog, server.address)
    finally:
        await channel.close()
        await server.server.stop(None)
        await app.stop()


def header(
    workflow: str = "wf", pod: str = "wf-pod-1", name: str = "out", suffix: str = ".tgz", **fields: str
) -> pb.UploadHeader:
    return pb.UploadHeader(workflow=workflow, pod_name=pod, artifact_name=name, suffix=suffix, **fields)
