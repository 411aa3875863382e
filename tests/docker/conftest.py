"""A real Docker engine for the Docker runtime's tests: started once per session, stopped by its own pid.

The engine is Debian's dockerd, started by tools/dockerd.py as ../shared/ENVIRONMENT.md
verified (vfs storage, no iptables, no bridge, its own data root, exec root and
socket under a temporary directory). Its images are imported from root
filesystems built here (busybox-static; the running Python), since no registry
can be reached.

In CI (CI=true) these tests must run: an engine that cannot start fails the
session loudly. Elsewhere, a machine without dockerd (or not root, which
dockerd needs) skips them with the reason. TREADLE_TEST_DOCKER_HOST points the
tests at an engine that is already running instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for extra in (HERE, REPO / "tools", REPO / "tests" / "conformance", REPO / "tests" / "e2e"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import dockerd  # noqa: E402  (tools/dockerd.py)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Engine:
    host: str
    # The engine this session started (None when TREADLE_TEST_DOCKER_HOST named one).
    private: dockerd.PrivateDockerd | None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true, and the Docker runtime tests need a real engine: {reason}", pytrace=False)
    pytest.skip(f"no Docker engine for the Docker runtime tests: {reason}")


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    existing = os.environ.get("TREADLE_TEST_DOCKER_HOST", "")
    if existing:
        dockerd.build_test_images(existing)
        yield Engine(existing, None)
        return
    if shutil.which("dockerd") is None:
        _unavailable("dockerd is not installed (apt-get install docker.io busybox-static; .ci/run does)")
    if not dockerd.BUSYBOX.exists():
        _unavailable(f"{dockerd.BUSYBOX} is missing (apt-get install busybox-static)")
    if os.geteuid() != 0:
        _unavailable("dockerd must run as root")
    # A short path: the engine's unix sockets live under it, and their paths are limited to 108 bytes.
    root = Path(tmp_path_factory.mktemp("dk", numbered=True))
    try:
        engine = dockerd.start_dockerd(root)
    except dockerd.DockerdError as exc:
        pytest.fail(f"the Docker engine for the Docker runtime tests did not start: {exc}", pytrace=False)
    try:
        dockerd.build_test_images(engine.host)
        yield Engine(engine.host, engine)
    finally:
        engine.stop()
