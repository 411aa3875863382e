"""Assemble ArtifactService: the store named by the repository URI, the repository, the servicer."""

from __future__ import annotations

from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.server import ServiceBinding

from .keys import KeyFormat
from .repository import ArtifactRepository
from .service import SERVICE_NAME, ArtifactServicer
from .stores import open_store


class ArtifactsApp:
    def __init__(self, repository: ArtifactRepository) -> None:
        self.repository = repository
        self.binding = ServiceBinding(
            name=SERVICE_NAME,
            servicer=ArtifactServicer(repository),
            add_to_server=artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server,
        )

    async def start(self, addresses: ServiceAddresses) -> None:
        """ArtifactService calls no other service."""

    async def stop(self) -> None:
        await self.repository.store.close()


def build(config: ServerConfig, tokens: StepTokens | None, *, key_format: KeyFormat | None = None) -> ArtifactsApp:
    store = open_store(config.repository_uri())
    return ArtifactsApp(ArtifactRepository(store, key_format=key_format, tokens=tokens))
