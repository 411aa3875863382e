"""Files in and out of a step's main container, through the engine's archive API.

init (the executor's own code) stages the script and the input artifacts at
their paths under a host-side mirror of main's filesystem (ContainerLayout);
they go into the created container as one tar before it starts, so they land
on the image's filesystem, or in a volume where a volumeMount covers the path
(as Argo's executor loads an artifact into an overlapping volume). After main
exits, each output path is copied out of the stopped container (get_archive:
the image's own filesystem and volumes alike) into the same mirror, where the
executor's wait code reads parameters and packs artifacts as it does locally.

Archives coming out of a container are untrusted: they are unpacked with
treadle.archive's hostile-archive rules (no absolute or escaping links).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from treadle.archive import unpack
from treadle.errors import TreadleError
from treadle.executor.layout import StepLayout, safe_name, workflow_dir
from treadle.services.scheduler.runtimes.docker_engine import DockerEngine, NoSuchObject
from treadle.services.scheduler.runtimes.docker_plan import SCRIPT_PATH
from treadle.workflow.v1 import workflow_pb2


@dataclass(frozen=True)
class ContainerLayout(StepLayout):
    """A step attempt's host directory for the Docker runtime; `rootfs/` mirrors main's filesystem."""

    @classmethod
    def for_attempt(cls, steps_dir: Path, workflow: str, node_id: str, attempt: int) -> ContainerLayout:
        return cls(workflow_dir(steps_dir, workflow) / f"{safe_name(node_id)}-{attempt}", isolated=True)

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def tmp_view(self) -> str:
        # The working directory relative paths resolve against when the template names none: the image's usual "/".
        return "/"

    @property
    def script_path(self) -> str:
        return SCRIPT_PATH

    def host_path(self, path: str, *, cwd: str | None = None) -> Path:
        """Where `path`, as main sees it, is mirrored on this host (every path is main's own)."""
        seen = posixpath.normpath(posixpath.join(cwd or self.tmp_view, path))
        relative = seen.lstrip("/")
        return self.rootfs / relative if relative and relative != "." else self.rootfs

    def create(self) -> None:
        if self.root.exists():
            self.remove()
        self.rootfs.mkdir(parents=True)
        self.staging.mkdir()

    def clear_rootfs(self) -> None:
        shutil.rmtree(self.rootfs, ignore_errors=True)
        self.rootfs.mkdir()


def container_path(path: str, cwd: str) -> str:
    return posixpath.normpath(posixpath.join(cwd, path))


def staged_paths(template: workflow_pb2.Template, cwd: str) -> list[str]:
    """What init may have staged: the script and every input artifact's path, as main sees them."""
    paths = [SCRIPT_PATH] if template.HasField("script") else []
    paths += [container_path(artifact.path, cwd) for artifact in template.inputs.artifacts if artifact.path]
    return paths


def output_paths(template: workflow_pb2.Template, cwd: str) -> list[str]:
    """Every path wait reads: output parameters' valueFrom.path and output artifacts' path."""
    paths = [container_path(p.value_from.path, cwd) for p in template.outputs.parameters if p.value_from.path]
    paths += [container_path(a.path, cwd) for a in template.outputs.artifacts if a.path]
    return sorted(set(paths), key=lambda p: (p.count("/"), p))


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def pack_staged(layout: ContainerLayout, paths: list[str]) -> Path | None:
    """One tar of the staged paths that exist (their parents are left out, so /tmp keeps its mode); None if none."""
    present = [p for p in paths if os.path.lexists(layout.host_path(p))]
    if not present:
        return None
    tar_path = layout.staging / "stage-in.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in present:
            tar.add(layout.host_path(path), arcname=path.lstrip("/"), filter=_root_owned)
    return tar_path


async def put_staged(engine: DockerEngine, container: str, layout: ContainerLayout, paths: list[str]) -> None:
    """Copy the staged script and inputs into the (created, not started) container."""
    tar_path = await asyncio.to_thread(pack_staged, layout, paths)
    if tar_path is None:
        return
    try:
        with tar_path.open("rb") as tar:
            await engine.put_archive(container, "/", tar)
    finally:
        tar_path.unlink(missing_ok=True)


class OutputCopyError(TreadleError):
    """An output path could not be copied out of the container."""


async def copy_outputs(engine: DockerEngine, container: str, layout: ContainerLayout, paths: list[str]) -> list[str]:
    """Copy each output path out of the stopped container into the layout's mirror.

    A missing path is skipped (wait then applies the default, or reports it missing).
    Returns the problems met, one line per path.
    """
    problems: list[str] = []
    await asyncio.to_thread(layout.clear_rootfs)  # the staged inputs are in the container now
    for path in paths:
        dest = layout.host_path(path)
        if dest == layout.rootfs or os.path.lexists(dest):
            continue  # copied already, as part of an enclosing output path
        tar_path = layout.staging / f"out-{os.urandom(6).hex()}.tar"
        try:
            with tar_path.open("wb") as sink:
                await engine.get_archive(container, path, sink)
            await asyncio.to_thread(_unpack_into, tar_path, dest)
        except NoSuchObject:
            continue
        except (TreadleError, OSError) as exc:
            problems.append(f"copying {path} out of the container failed: {exc}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tar_path.unlink()
    return problems


def _unpack_into(tar_path: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    unpack(tar_path, dest)
