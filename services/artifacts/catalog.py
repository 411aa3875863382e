"""The repositories one ArtifactService serves: the default, and named ones for artifactRepositoryRef.

The server's repository URI (``ServerConfig.artifact_repository``) is the
default. A repositories file adds named repositories in the shape of Argo's
``artifact-repositories`` ConfigMap, one Argo ArtifactRepository per name::

    secretsDir: /etc/treadle/secrets          # secret selectors read <secretsDir>/<name>/<key>
    default: minio                            # optional: a named repository becomes the default
    repositories:
      minio:
        s3:
          endpoint: minio.example:9000
          bucket: artifacts
          insecure: true
          keyFormat: "{{workflow.name}}/{{pod.name}}/{{artifact.name}}"
          accessKeySecret: {name: minio-creds, key: accesskey}
          secretKeySecret: {name: minio-creds, key: secretkey}
      scratch:
        uri: file:///var/lib/treadle/scratch
        keyFormat: "scratch/{{workflow.name}}/{{pod.name}}/{{artifact.name}}"

A ``keyFormat`` query parameter sets the key format of a URI (``?keyFormat=...``).
Credentials never appear in this file's values, only where to find them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import yaml

from treadle.auth import StepTokens
from treadle.errors import InvalidSpec, NotFound
from treadle.secrets import SecretFiles

from .keys import KeyFormat
from .repository import ArtifactRepository
from .stores import ArtifactStore, open_store

_ARGO_IGNORED = {"archiveLogs"}  # logs are always archived


@dataclass(frozen=True)
class RepositoryDescription:
    name: str
    location: str
    key_format: str


class RepositoryCatalog:
    """Named ArtifactRepositories; the name "" is the default."""

    def __init__(self, repositories: Mapping[str, ArtifactRepository], secrets: SecretFiles | None = None) -> None:
        if "" not in repositories:
            raise ValueError("a catalog needs a default repository (name '')")
        self._repositories = dict(repositories)
        self.secrets = secrets or SecretFiles(None)

    @classmethod
    def single(cls, repository: ArtifactRepository, secrets: SecretFiles | None = None) -> RepositoryCatalog:
        return cls({"": repository}, secrets)

    def with_default(self, repository: ArtifactRepository) -> RepositoryCatalog:
        return RepositoryCatalog({**self._repositories, "": repository}, self.secrets)

    @property
    def default(self) -> ArtifactRepository:
        return self._repositories[""]

    def get(self, name: str) -> ArtifactRepository:
        repository = self._repositories.get(name)
        if repository is None:
            raise NotFound("artifact repository", name)
        return repository

    def names(self) -> list[str]:
        return sorted(self._repositories)

    def describe(self, name: str) -> RepositoryDescription:
        repository = self.get(name)
        return RepositoryDescription(name, repository.store.uri, repository.key_format.template)

    async def close(self) -> None:
        closed: set[int] = set()
        for repository in self._repositories.values():
            if id(repository.store) not in closed:
                closed.add(id(repository.store))
                await repository.store.close()


def load_catalog(
    default_uri: str,
    *,
    repositories_file: Path | None = None,
    tokens: StepTokens | None = None,
    secrets_dir: Path | None = None,
) -> RepositoryCatalog:
    """The default repository from its URI, plus the named ones of repositories_file when given."""
    doc: Mapping[str, Any] = _read_file(repositories_file) if repositories_file else {}
    secrets_root = doc.get("secretsDir") or secrets_dir
    secrets = SecretFiles(Path(secrets_root) if secrets_root else None)
    repositories: dict[str, ArtifactRepository] = {}
    entries = doc.get("repositories") or {}
    if not isinstance(entries, Mapping):
        raise InvalidSpec("repositories must map names to repositories", field="repositories")
    for name, entry in entries.items():
        if not isinstance(name, str) or not name:
            raise InvalidSpec(f"{name!r} is not a repository name", field="repositories")
        store, key_format = open_repository(entry, secrets, f"repositories.{name}")
        repositories[name] = ArtifactRepository(store, key_format=key_format, tokens=tokens, name=name)
    default_name = doc.get("default")
    if default_name:
        if default_name not in repositories:
            raise InvalidSpec(f"default repository {default_name!r} is not defined", field="default")
        named = repositories[default_name]
        repositories[""] = ArtifactRepository(named.store, key_format=named.key_format, tokens=tokens)
    else:
        uri, key_format = split_key_format(default_uri)
        repositories[""] = ArtifactRepository(open_store(uri), key_format=key_format, tokens=tokens)
    return RepositoryCatalog(repositories, secrets)


def open_repository(entry: Any, secrets: SecretFiles, where: str) -> tuple[ArtifactStore, KeyFormat]:
    """A store and key format from one Argo-shaped repository entry (``s3:`` or ``uri:``)."""
    if not isinstance(entry, Mapping):
        raise InvalidSpec("must be a mapping with s3 or uri", field=where)
    kinds = set(entry) - _ARGO_IGNORED - {"keyFormat"}
    if kinds == {"uri"}:
        uri, key_format = split_key_format(str(entry["uri"]))
        if entry.get("keyFormat"):
            key_format = KeyFormat(str(entry["keyFormat"]))
        return open_store(uri), key_format
    if kinds == {"s3"} and isinstance(entry["s3"], Mapping):
        from .stores.s3_config import open_s3_store, s3_config_from_mapping

        s3 = dict(entry["s3"])
        key_format = KeyFormat(str(s3.pop("keyFormat", None) or entry.get("keyFormat") or KeyFormat().template))
        return open_s3_store(s3_config_from_mapping(s3, secrets, f"{where}.s3")), key_format
    raise InvalidSpec(f"needs exactly one of s3 or uri, got {', '.join(sorted(kinds)) or 'neither'}", field=where)


def split_key_format(uri: str) -> tuple[str, KeyFormat]:
    """The URI without its keyFormat parameter, and the key format it named (or the default)."""
    parts = urlsplit(uri)
    params = parse_qsl(parts.query, keep_blank_values=True)
    template = next((v for k, v in params if k == "keyFormat"), "")
    rest = urlencode([(k, v) for k, v in params if k != "keyFormat"])
    return parts._replace(query=rest).geturl(), KeyFormat(template) if template else KeyFormat()


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidSpec(f"cannot read {path}: {exc.strerror}", field="artifactRepositories") from None
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"{path} is not valid YAML: {exc}", field="artifactRepositories") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise InvalidSpec(f"{path} must hold a mapping", field="artifactRepositories")
    unknown = set(doc) - {"secretsDir", "default", "repositories"}
    if unknown:
        raise InvalidSpec(f"unknown field(s) {', '.join(sorted(unknown))} in {path}", field="artifactRepositories")
    return doc
