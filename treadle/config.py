"""Server configuration: where data lives and where each service listens."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 7733


def default_data_dir() -> Path:
    base = os.environ.get("TREADLE_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "treadle"
    )
    return Path(base)


@dataclass(frozen=True)
class ServiceAddresses:
    """host:port of each service. In the all-in-one server they are all the same."""

    admission: str = ""
    scheduler: str = ""
    artifacts: str = ""
    outputs: str = ""
    # WorkflowTemplateService; hosted with admission, so empty means the admission address.
    templates: str = ""

    @classmethod
    def all_at(cls, address: str) -> ServiceAddresses:
        return cls(admission=address, scheduler=address, artifacts=address, outputs=address, templates=address)


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    listen: str = f"127.0.0.1:{DEFAULT_PORT}"
    runtime: str = "local"
    # Artifact repository URI; empty means file://<data_dir>/artifacts.
    artifact_repository: str = ""
    # YAML file of named artifact repositories (artifactRepositoryRef) and the secrets directory;
    # see services/artifacts/catalog.py. Empty: TREADLE_ARTIFACT_REPOSITORIES, else none.
    artifact_repositories: str = ""
    addresses: ServiceAddresses = field(default_factory=ServiceAddresses)
    # The Docker engine of --runtime docker; empty means DOCKER_HOST (or the default socket).
    docker_host: str = ""
    # Secrets for env valueFrom.secretKeyRef, as files <dir>/<name>/<key>; None means <data_dir>/secrets.
    secrets_dir: Path | None = None

    @property
    def database(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def token_secret_file(self) -> Path:
        return self.data_dir / "step-token.key"

    @property
    def steps_dir(self) -> Path:
        return self.data_dir / "steps"

    @property
    def secrets_path(self) -> Path:
        """--secrets-dir, else TREADLE_SECRETS_DIR, else <data_dir>/secrets (where the artifact service looks too)."""
        return self.secrets_dir or Path(os.environ.get("TREADLE_SECRETS_DIR") or self.data_dir / "secrets")

    def repository_uri(self) -> str:
        return self.artifact_repository or (self.data_dir / "artifacts").resolve().as_uri()
