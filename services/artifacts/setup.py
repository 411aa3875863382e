"""Assemble ArtifactService: the repositories (default URI plus the repositories file), the servicer.

Configuration:
- ``ServerConfig.repository_uri()``: the default repository (file://, memory://, s3://...).
- the repositories file of named repositories (catalog.py): ``ServerConfig.artifact_repositories``,
  else the ``TREADLE_ARTIFACT_REPOSITORIES`` environment variable.
- the secrets directory for secret selectors: the file's ``secretsDir``, else
  ``ServerConfig.secrets_path`` (``--secrets-dir``, ``TREADLE_SECRETS_DIR``, ``<data_dir>/secrets``).
"""

from __future__ import annotations

import os
from pathlib import Path

from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.server import ServiceBinding

from .catalog import RepositoryCatalog, load_catalog
from .importer import Importer
from .keys import KeyFormat
from .repository import ArtifactRepository
from .service import SERVICE_NAME, ArtifactServicer

REPOSITORIES_ENV = "TREADLE_ARTIFACT_REPOSITORIES"


class ArtifactsApp:
    def __init__(self, repositories: RepositoryCatalog | ArtifactRepository) -> None:
        if isinstance(repositories, ArtifactRepository):
            repositories = RepositoryCatalog.single(repositories)
        self.catalog = repositories
        self.repository = repositories.default
        self.binding = ServiceBinding(
            name=SERVICE_NAME,
            servicer=ArtifactServicer(repositories, importer=Importer(repositories)),
            add_to_server=artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server,
        )

    async def start(self, addresses: ServiceAddresses) -> None:
        """ArtifactService calls no other service."""

    async def stop(self) -> None:
        await self.catalog.close()


def build(config: ServerConfig, tokens: StepTokens | None, *, key_format: KeyFormat | None = None) -> ArtifactsApp:
    """The app for config; key_format, when given, replaces the default repository's."""
    repositories_file = config.artifact_repositories or os.environ.get(REPOSITORIES_ENV, "")
    catalog = load_catalog(
        config.repository_uri(),
        repositories_file=Path(repositories_file) if repositories_file else None,
        tokens=tokens,
        secrets_dir=config.secrets_path,
    )
    if key_format is not None:
        catalog = catalog.with_default(ArtifactRepository(catalog.default.store, key_format=key_format, tokens=tokens))
    return ArtifactsApp(catalog)
