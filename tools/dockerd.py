#!/usr/bin/env python3
"""A private Docker engine and locally built images, for the Docker runtime's tests and benchmark.

    .venv/bin/python tools/dockerd.py      # start one, build the images, print DOCKER_HOST; Ctrl-C stops it

No registry can be reached here, so nothing is pulled. The engine is started
as ../shared/ENVIRONMENT.md verified: Debian's dockerd with vfs storage, no
iptables, no default bridge, its own data root, exec root, pid file and
socket under one directory, and stopped by its own pid. The images are
imported from root filesystems built on this machine:

    treadle-test/busybox:1   busybox-static and its applets (sh, echo, sleep, wget, httpd, nc, ...)
                             also tagged busybox:latest, which the manifests name
    treadle-test/python:1    the same plus the Python running this (its binary, libraries and
                             standard library); also tagged python:3-alpine and python:3.12-alpine
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker

BUSYBOX = Path("/bin/busybox")
BUSYBOX_IMAGE = "treadle-test/busybox:1"
PYTHON_IMAGE = "treadle-test/python:1"
IMAGE_ALIASES = {
    BUSYBOX_IMAGE: ("busybox:latest",),
    PYTHON_IMAGE: ("python:3-alpine", "python:3.12-alpine"),
}
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# Parts of the standard library no step needs (tests, GUIs, the build configuration, installed packages).
STDLIB_SKIPPED = {
    "site-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "__pycache__",
}


class DockerdError(RuntimeError):
    """dockerd could not be started (the message ends with its log)."""


@dataclass
class PrivateDockerd:
    """A running dockerd of our own; stop() ends it by its pid and removes its directory."""

    root: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        """Its DOCKER_HOST."""
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def log_file(self) -> Path:
        return self.root / "dockerd.log"

    def restart(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Stop the engine (its running containers are stopped too) and start it again on the same root."""
        self.stop(remove=False)
        self.process = start_dockerd(self.root, timeout).process

    def stop(self, *, remove: bool = True) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # dockerd stops its containers and its containerd, then exits
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def dockerd_command(root: Path) -> list[str]:
    return [
        shutil.which("dockerd") or "dockerd",
        "--iptables=false",
        "--bridge=none",
        "--storage-driver=vfs",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        # Containers still running at shutdown get this long between SIGTERM and SIGKILL.
        "--shutdown-timeout=2",
    ]


def start_dockerd(root: Path | None = None, timeout: float = START_TIMEOUT_SECONDS) -> PrivateDockerd:
    """Start dockerd under root (a fresh temporary directory by default) and wait until it answers."""
    if shutil.which("dockerd") is None:
        raise DockerdError("dockerd is not installed (Debian: apt-get install docker.io)")
    root = root or Path(tempfile.mkdtemp(prefix="treadle-docker-"))
    root.mkdir(parents=True, exist_ok=True)
    with (root / "dockerd.log").open("ab") as log:
        process = subprocess.Popen(
            dockerd_command(root), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    engine = PrivateDockerd(root, process)
    deadline = time.monotonic() + timeout
    while not answers(root / "docker.sock"):
        if process.poll() is not None:
            raise DockerdError(f"dockerd exited with code {process.returncode}:\n{_tail(engine.log_file)}")
        if time.monotonic() > deadline:
            engine.stop(remove=False)
            raise DockerdError(f"dockerd did not answer within {timeout:g}s:\n{_tail(engine.log_file)}")
        time.sleep(0.1)
    return engine


def answers(socket_path: Path) -> bool:
    """True once the engine answers GET /_ping on its socket (a plain socket: nothing is left open)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------ images


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _busybox_base(tar: tarfile.TarFile) -> None:
    for directory in ("bin", "etc", "usr", "usr/bin", "usr/local", "usr/local/bin", "root", "var"):
        _add_dir(tar, directory)
    _add_dir(tar, "tmp", 0o1777)
    tar.add(BUSYBOX, arcname="bin/busybox", filter=_root_owned)
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            _add_symlink(tar, f"bin/{applet}", "busybox")
    _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    _add_text(tar, "etc/group", "root:x:0:\nnogroup:x:65534:\n")


def _shared_libraries(binary: Path) -> list[Path]:
    """The libraries ldd says binary loads (with the loader), by their real paths."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    found: list[Path] = []
    for line in out.splitlines():
        parts = line.split()
        candidates = [p for p in parts if p.startswith("/")]
        if candidates:
            found.append(Path(candidates[0]))
    return found


def _add_with_parents(tar: tarfile.TarFile, path: Path, added: set[str], *, recursive: bool = False) -> None:
    """Add path at its own absolute place (its parent directories first), following it if it is a symlink."""
    parents = [p for p in reversed(path.parents) if str(p) != "/"]
    for parent in parents:
        name = str(parent).lstrip("/")
        if name not in added:
            added.add(name)
            _add_dir(tar, name)
    real = path.resolve()
    if path.is_symlink() and real != path:
        _add_with_parents(tar, real, added)
        _add_symlink(tar, str(path).lstrip("/"), str(real))
        return
    tar.add(path, arcname=str(path).lstrip("/"), recursive=False, filter=_root_owned)
    added.add(str(path).lstrip("/"))
    if recursive and path.is_dir():
        for child in sorted(path.iterdir()):
            if child.name not in STDLIB_SKIPPED and not child.name.startswith("config-"):
                _add_tree(tar, child)


def _add_tree(tar: tarfile.TarFile, path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        tar.add(path, arcname=str(path).lstrip("/"), recursive=False, filter=_root_owned)
        for child in sorted(path.iterdir()):
            if child.name not in STDLIB_SKIPPED:
                _add_tree(tar, child)
    else:
        tar.add(path, arcname=str(path).lstrip("/"), recursive=False, filter=_root_owned)


def _python_layer(tar: tarfile.TarFile) -> None:
    """This interpreter at its own paths, with its libraries and standard library; bin/python3 runs it."""
    binary = Path(os.path.realpath(sys.executable))
    added = {"bin", "etc", "usr", "usr/bin", "usr/local", "usr/local/bin", "root", "var", "tmp"}
    _add_with_parents(tar, binary, added)
    for library in _shared_libraries(binary):
        if str(library).lstrip("/") not in added:
            _add_with_parents(tar, library, added)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    _add_with_parents(tar, stdlib, added, recursive=True)
    for name in ("python3", "python"):
        _add_symlink(tar, f"usr/local/bin/{name}", str(binary))


def _rootfs_tar(parts: Iterable[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _busybox_base(tar)
        if "python" in parts:
            _python_layer(tar)
    return buffer.getvalue()


def build_test_images(host: str, *, python: bool = True) -> list[str]:
    """Import the test images into the engine at host (and tag their aliases); the tags made."""
    if not BUSYBOX.exists():
        raise DockerdError(f"{BUSYBOX} is missing (Debian: apt-get install busybox-static)")
    api = docker.APIClient(base_url=host, version="1.41", timeout=300)
    made: list[str] = []
    try:
        wanted: dict[str, tuple[str, ...]] = {BUSYBOX_IMAGE: ("busybox",)}
        if python:
            wanted[PYTHON_IMAGE] = ("busybox", "python")
        for image, parts in wanted.items():
            repository, tag = image.rsplit(":", 1)
            api.import_image_from_data(_rootfs_tar(parts), repository=repository, tag=tag)
            made.append(image)
            for alias in IMAGE_ALIASES[image]:
                alias_repository, alias_tag = alias.rsplit(":", 1)
                api.tag(image, alias_repository, alias_tag, force=True)
                made.append(alias)
    finally:
        api.close()
    return made


def main() -> int:
    engine = start_dockerd()
    try:
        images = build_test_images(engine.host)
        print(f"export DOCKER_HOST={engine.host}   # images: {', '.join(images)}; Ctrl-C stops the engine", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        engine.stop()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
