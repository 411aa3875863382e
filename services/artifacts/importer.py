"""ImportArtifact's core: fetch an input artifact from s3, http or git into the repository.

The object lands under the step's keys (artifact name ``<name>.input``, which
no Argo artifact name can collide with, since those have no dots), owned by the
workflow, so artifact GC removes it with the workflow's other objects. A
key-only s3 source that treadle wrote itself is not copied: its own key is
returned. Whatever is fetched is stored with its digest; the executor then
downloads it like any other object, checked end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from io import FileIO
from pathlib import Path

from treadle.archive import SUFFIXES, pack
from treadle.errors import FailedPrecondition, InvalidSpec, NotFound
from treadle.workflow.v1 import workflow_pb2

from ._threads import blocking
from .catalog import RepositoryCatalog
from .keys import ArtifactTarget
from .repository import ArtifactRepository
from .sources import describe_source, import_kind
from .sources.git import git_checkout
from .sources.http import open_http
from .sources.s3 import download_directory, open_object, source_store
from .stores.base import CHUNK_BYTES, ObjectInfo

log = logging.getLogger(__name__)

IMPORT_SUFFIX = ".input"
MAX_IMPORT_SECONDS = 3600.0


@dataclass(frozen=True)
class Imported:
    """What the executor downloads: the object, its repository, and how it is packed ("tgz" or "")."""

    info: ObjectInfo
    repository: str
    archive: str


class Importer:
    def __init__(self, catalog: RepositoryCatalog, *, work_root: Path | None = None) -> None:
        self._catalog = catalog
        self._work_root = work_root

    async def import_artifact(
        self,
        repository_name: str,
        workflow: str,
        pod_name: str,
        artifact: workflow_pb2.Artifact,
        *,
        token: str | None,
        timeout: float = MAX_IMPORT_SECONDS,
    ) -> Imported:
        """Fetch artifact's source and store it. NotFound when the source has no such object, path or revision."""
        repository = self._catalog.get(repository_name)
        repository.authorize_workflow(token, workflow)
        kind = import_kind(artifact)
        if kind is None:
            raise InvalidSpec(f"input artifact {artifact.name!r} has no s3, http or git source", field="artifact")
        if not artifact.name:
            raise InvalidSpec("must not be empty", field="artifact.name")
        target = ArtifactTarget(workflow, pod_name, artifact.name + IMPORT_SUFFIX)
        timeout = min(timeout, MAX_IMPORT_SECONDS)
        log.info("importing input artifact %s of %s from %s", artifact.name, pod_name, describe_source(artifact))
        with tempfile.TemporaryDirectory(prefix="treadle-import-", dir=self._work_root) as work:
            if kind == "http":
                if artifact.sub_path:
                    raise InvalidSpec("subPath is not supported for http sources", field="subPath")
                async with await open_http(artifact.http, self._catalog.secrets, timeout=timeout) as reader:
                    info = await repository.put(repository.key_format.render(target), reader, owner=workflow)
                return Imported(info, repository.name, "")
            if kind == "git":
                checkout = await git_checkout(
                    artifact.git, artifact.sub_path, self._catalog.secrets, Path(work), timeout=timeout
                )
                return await self._store_tree(repository, target, checkout, Path(work))
            return await self._import_s3(repository, target, artifact, Path(work))

    async def _import_s3(
        self, repository: ArtifactRepository, target: ArtifactTarget, artifact: workflow_pb2.Artifact, work: Path
    ) -> Imported:
        spec = artifact.s3
        key = "/".join(p for p in (spec.key.strip("/"), artifact.sub_path.strip("/")) if p)
        if not key:
            raise InvalidSpec("an s3 source needs a key", field="s3.key")
        async with source_store(spec, repository.store, self._catalog.secrets) as store:
            if store is repository.store:
                existing = await _stat_own(repository, key)
                if existing is not None:
                    return Imported(existing, repository.name, "")  # treadle's own object: no copy
            try:
                async with await open_object(store, key) as reader:
                    info = await repository.put(
                        repository.key_format.render(target), reader, owner=target.workflow, sha256=reader.info.sha256
                    )
                return Imported(info, repository.name, "")
            except (NotFound, InvalidSpec):
                pass  # perhaps a "directory": the objects under key/
            tree = work / "tree" / (key.rsplit("/", 1)[-1] or "data")
            if not await download_directory(store, key + "/", tree):
                raise NotFound("s3 artifact", describe_source(artifact)) from None
        return await self._store_tree(repository, target, tree, work)

    async def _store_tree(
        self, repository: ArtifactRepository, target: ArtifactTarget, tree: Path, work: Path
    ) -> Imported:
        """Pack a file or directory as tar+gzip and store it, announcing its digest."""
        packed = work / f"packed{SUFFIXES['tgz']}"
        await asyncio.to_thread(pack, tree, packed)
        sha256 = await asyncio.to_thread(_file_sha256, packed)
        suffixed = ArtifactTarget(target.workflow, target.pod_name, target.artifact_name, SUFFIXES["tgz"])
        info = await repository.put(
            repository.key_format.render(suffixed), _file_chunks(packed), owner=target.workflow, sha256=sha256
        )
        return Imported(info, repository.name, "tgz")


async def _stat_own(repository: ArtifactRepository, key: str) -> ObjectInfo | None:
    """The repository's object at key if treadle wrote it (so it has a digest); None otherwise."""
    try:
        return await repository.stat(key)
    except (NotFound, FailedPrecondition, InvalidSpec):
        return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with FileIO(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await blocking(FileIO, path, "rb")
    try:
        while chunk := await blocking(f.read, CHUNK_BYTES):
            yield chunk
    finally:
        f.close()
