"""A step's artifacts as its executor handles them, over ArtifactService only.

- ``stage_input`` places one input artifact: raw text; a stored object (a
  ``from`` artifact); or an outside source (s3, http, git), which the service
  imports with its own credentials before the executor downloads it. It honours
  ``optional``, ``mode``/``recurseMode``, ``subPath`` and ``archive``
  (none, tar, zip; by default a tarball is unpacked and anything else kept
  as-is, as Argo does). A missing artifact that is not optional fails with a
  message naming the artifact and its source.
- ``output_header`` and ``stored_artifact`` name an output's object: a
  key-only ``s3: {key: ...}`` output is stored at exactly that key of the
  workflow's repository.

Large parameter values and results: see values.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from treadle.archive import resolve_inside, unpack_artifact
from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import InvalidSpec, NotFound, TreadleError
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import error_from_rpc
from treadle.workflow.v1 import workflow_pb2

from .client import download_to_file
from .sources import describe_source, import_kind

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

# Fetching from an outside source has no size known up front; the service bounds it too.
IMPORT_TIMEOUT = 3600.0
# Transfers get DEFAULT_TIMEOUT plus the time to move their bytes at this (pessimistic) rate.
TRANSFER_BYTES_PER_SECOND = 5_000_000


def transfer_timeout(size_bytes: int) -> float:
    return DEFAULT_TIMEOUT + size_bytes / TRANSFER_BYTES_PER_SECOND


class InputArtifactError(TreadleError):
    """An input artifact could not be placed; the message names the artifact and its source."""


@dataclass(frozen=True)
class StepArtifacts:
    """Who the executor is to ArtifactService: its step, the workflow's repository, its call metadata."""

    stub: ArtifactServiceAsyncStub
    workflow: str
    pod_name: str
    repository: str = ""  # the workflow's artifactRepositoryRef; "" for the default
    metadata: tuple[tuple[str, str], ...] = ()
    timeout_for: Callable[[int], float] = transfer_timeout
    import_timeout: float = IMPORT_TIMEOUT


async def stage_input(step: StepArtifacts, artifact: workflow_pb2.Artifact, dest: Path, staging: Path) -> bool:
    """Place artifact at dest (which must not exist). False when an optional artifact is missing.

    staging is a private scratch directory on dest's filesystem. Raises InputArtifactError.
    """
    source = describe_source(artifact)
    work = staging / f"in-{os.urandom(6).hex()}"
    try:
        if artifact.HasField("raw"):
            await asyncio.to_thread(_write_raw, dest, artifact.raw.data)
        else:
            location = await _locate(step, artifact)
            if location is None:
                if artifact.optional:
                    return False
                raise InputArtifactError(f"input artifact {artifact.name!r} was not supplied")
            work.mkdir(parents=True)
            downloaded = work / "object"
            await download_to_file(
                step.stub,
                location.key,
                downloaded,
                repository=location.repository,
                timeout=step.timeout_for(location.size_bytes),
                metadata=step.metadata,
            )
            sub_path = "" if import_kind(artifact) else artifact.sub_path  # the service applied it to imports
            await asyncio.to_thread(_place, downloaded, dest, input_archive(artifact, location.archive), sub_path)
        if artifact.HasField("mode"):
            await asyncio.to_thread(apply_mode, dest, artifact.mode, recurse=artifact.recurse_mode)
    except NotFound:
        if artifact.optional:
            return False
        raise InputArtifactError(f"input artifact {artifact.name!r} from {source}: not found") from None
    except InputArtifactError:
        raise
    except (TreadleError, OSError) as exc:
        raise InputArtifactError(f"input artifact {artifact.name!r} from {source}: {exc}") from None
    finally:
        if work.exists():
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)
    return True


def input_archive(artifact: workflow_pb2.Artifact, stored_archive: str) -> str | None:
    """How to unpack: the artifact's own archive strategy, else how the object was stored, else detect a tarball."""
    strategy = artifact.archive
    if strategy.HasField("none"):
        return "none"
    if strategy.HasField("zip"):
        return "zip"
    if strategy.HasField("tar"):
        return "tgz"
    return stored_archive or None


def output_header(step: StepArtifacts, artifact: workflow_pb2.Artifact, suffix: str) -> artifacts_pb2.UploadHeader:
    """Where an output artifact goes: the key format, or exactly a key-only ``s3: {key: ...}``."""
    key = ""
    if artifact.HasField("s3"):
        s3 = artifact.s3
        if s3.bucket or s3.endpoint or s3.HasField("access_key_secret"):
            raise InvalidSpec(
                f"output artifact {artifact.name!r}: only a key may be given for an s3 output; "
                "it goes to the workflow's artifact repository",
                field="s3",
            )
        key = s3.key
    return artifacts_pb2.UploadHeader(
        workflow=step.workflow,
        pod_name=step.pod_name,
        artifact_name=artifact.name,
        suffix=suffix,
        repository=step.repository,
        key=key,
    )


def stored_artifact(info: artifacts_pb2.ArtifactInfo, archive: str) -> workflow_pb2.StoredArtifact:
    return workflow_pb2.StoredArtifact(
        key=info.key, size_bytes=info.size_bytes, sha256=info.sha256, archive=archive, repository=info.repository
    )


def apply_mode(path: Path, mode: int, *, recurse: bool = False) -> None:
    """chmod path, and with recurse everything below it (symlinks are left alone), as Argo does."""
    if not 0 <= mode <= 0o7777:
        raise InvalidSpec(f"{mode:o} is not a file mode", field="mode")
    os.chmod(path, mode)
    if recurse and path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                child = os.path.join(root, name)
                if not stat.S_ISLNK(os.lstat(child).st_mode):
                    os.chmod(child, mode)


@dataclass(frozen=True)
class _Location:
    key: str
    repository: str
    size_bytes: int
    archive: str


async def _locate(step: StepArtifacts, artifact: workflow_pb2.Artifact) -> _Location | None:
    """The stored object to download: the artifact's own, or the one ImportArtifact makes of its source."""
    if import_kind(artifact) is not None:
        request = artifacts_pb2.ImportArtifactRequest(
            workflow=step.workflow, pod_name=step.pod_name, repository=step.repository, artifact=artifact
        )
        try:
            response = await step.stub.ImportArtifact(request, timeout=step.import_timeout, metadata=step.metadata)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        info = response.info
        return _Location(info.key, info.repository, info.size_bytes, response.archive)
    if artifact.HasField("stored") and artifact.stored.key:
        s = artifact.stored
        return _Location(s.key, s.repository, s.size_bytes, s.archive)
    return None


def _write_raw(dest: Path, text: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)


def _place(downloaded: Path, dest: Path, archive: str | None, sub_path: str) -> None:
    if not sub_path:
        unpack_artifact(downloaded, dest, archive=archive)
        return
    unpacked = downloaded.with_name("unpacked")
    unpack_artifact(downloaded, unpacked, archive=archive)
    try:
        chosen = resolve_inside(unpacked, sub_path)
    except FileNotFoundError:
        raise NotFound("path in the artifact", sub_path) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dest):
        raise InvalidSpec(f"artifact destination {dest} exists already", field="path")
    os.rename(chosen, dest)
