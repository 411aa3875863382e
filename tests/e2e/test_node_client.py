"""clients/node/submit-and-watch.js with node against a live `treadle serve all`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from served import ServedTreadle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "clients" / "node" / "submit-and-watch.js"
MANIFESTS = REPO / "tests" / "e2e" / "manifests"
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTreadle]:
    if NODE is None:
        pytest.skip("node is not installed")
    if not (REPO / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node_modules is missing @grpc/grpc-js: run scripts/setup (npm ci)")
    served = ServedTreadle(tmp_path_factory.mktemp("node-server"))
    try:
        yield served
    finally:
        log = served.stop()
        assert served.process.returncode == 0, log


def submit_and_watch(server: ServedTreadle, *args: str, use_env: bool = True) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    env = {**os.environ, "TREADLE_SERVER": server.address} if use_env else dict(os.environ)
    return subprocess.run([NODE, str(CLI), *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=90)


def test_a_succeeding_workflow_prints_its_states_and_outputs_and_exits_0(server: ServedTreadle) -> None:
    proc = submit_and_watch(server, "examples/dag-diamond.yaml")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    name = lines[0].removeprefix("submitted ")
    assert name.startswith("dag-diamond-")
    states = [line for line in lines if line.startswith(f"{name}: ")]
    assert states[-1].startswith(f"{name}: Succeeded (resource version ")
    versions = [int(state.rsplit(" ", 1)[1].rstrip(")")) for state in states]
    assert versions == sorted(set(versions))
    assert "phase: Succeeded" in lines
    assert "node combine [pod] Succeeded" in lines
    assert "  result: 6 + 13 = 19" in lines
    assert "  parameter number = 19" in lines
    assert "  parameter total = 19" in lines  # the dag's own output


def test_parameters_and_the_server_flag(server: ServedTreadle) -> None:
    proc = submit_and_watch(
        server, "--server", server.address, "-p", "audience=spinners", "examples/parameters.yaml", use_env=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "  result: hello, spinners!" in proc.stdout.splitlines()


def test_a_failing_workflow_exits_1_naming_the_step(server: ServedTreadle) -> None:
    proc = submit_and_watch(server, str(MANIFESTS / "failing-step.yaml"))
    assert proc.returncode == 1, proc.stderr
    assert "phase: Failed" in proc.stdout
    assert "node snap-thread [pod] Failed: exit code 3" in proc.stdout.splitlines()


def test_a_rejected_manifest_exits_2_with_the_field_violations(server: ServedTreadle) -> None:
    proc = submit_and_watch(server, str(MANIFESTS / "cycle.yaml"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "submit-and-watch: INVALID_ARGUMENT: " in proc.stderr
    assert "  field spec.templates[0].dag.tasks: dependency cycle" in proc.stderr


def test_no_server_exits_3_unavailable(tmp_path: Path) -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    env = {**os.environ, "TREADLE_SERVER": "127.0.0.1:1"}
    proc = subprocess.run(
        [NODE, str(CLI), "examples/hello-world.yaml"], capture_output=True, text=True, cwd=REPO, env=env, timeout=60
    )
    assert proc.returncode == 3
    assert "UNAVAILABLE" in proc.stderr
