"""Whole workflows in real containers: `treadle serve all --runtime docker` against a real Docker engine.

- every walking-skeleton example (examples/*.yaml), with the checks tests/e2e applies to them;
- a representative part of the conformance suite: steps, dag, depends, loops, retries, deadlines,
  exit handlers, outputs, recursion, stop;
- the Docker runtime's own cases (manifests/): sidecars, images and pull policies, OOMKilled, resources,
  command/args/env/workingDir, volumes and files, secrets, termination;
- and, after each one, that no container, network or volume of the finished workflow is left.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance_harness import MANIFESTS as CONFORMANCE_MANIFESTS
from conformance_harness import Case, check_outcome, load_case, running_server
from served import ServedTreadle
from suite import DockerSuite, for_docker, wait_until

from treadle.client import SyncTreadleClient, workflow_to_argo_json
from treadle.workflow.v1 import workflow_pb2

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CONFORMANCE_SUBSET = [
    "continue-on-failed",
    "dag-target",
    "depends-results",
    "depends-any-all",
    "loop-items-maps",
    "loop-param-result",
    "loop-sequence-count",
    "retry-limit-recovers",
    "retry-limit-exhausted",
    "deadline-timeout",
    "exit-handler-success",
    "exit-handler-step-and-task",
    "output-status-exit-code",
    "workflow-outputs",
    "recursion-countdown",
    "workflow-stop",
]
OWN_CASES = sorted((HERE / "manifests").glob("*.yaml"))
SECRET_NAME, SECRET_KEY = "loom-credentials", "password"
# A value that must never appear in the server's log.
SECRET_VALUE = f"weft-{secrets.token_hex(8)}"


def _example_case(path: Path) -> Case:
    return Case(path=path, text=path.read_text(), expect={"phase": "Succeeded"})


def _example_checks() -> dict[str, Callable[[dict[str, Any]], None]]:
    """The checks tests/e2e/test_examples.py applies to each example."""
    spec = importlib.util.spec_from_file_location("treadle_e2e_examples", REPO / "tests" / "e2e" / "test_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    checks: dict[str, Callable[[dict[str, Any]], None]] = module.CHECKS
    return checks


CASES = (
    [_example_case(p) for p in EXAMPLES]
    + [for_docker(load_case(CONFORMANCE_MANIFESTS / f"{name}.yaml")) for name in CONFORMANCE_SUBSET]
    + [load_case(p) for p in OWN_CASES]
)
EXAMPLE_CHECKS = _example_checks()


@pytest.fixture(scope="module")
def docker_suite(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerSuite]:
    secrets_dir = tmp_path_factory.mktemp("secrets")
    (secrets_dir / SECRET_NAME).mkdir()
    (secrets_dir / SECRET_NAME / SECRET_KEY).write_text(SECRET_VALUE)
    args = ["--runtime", "docker", "--docker-host", docker_engine.host, "--secrets-dir", str(secrets_dir)]
    with running_server(args, env={"DOCKER_HOST": docker_engine.host}) as server:
        suite = DockerSuite(server, docker_engine.host)
        suite.start(CASES)
        try:
            yield suite
        finally:
            suite.close()


def _case_id(case: Case) -> str:
    return f"example-{case.name}" if case.path.parent.name == "examples" else case.name


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_workflow_runs_in_containers(docker_suite: DockerSuite, case: Case) -> None:
    outcome = docker_suite.outcome(case)
    check = EXAMPLE_CHECKS.get(case.path.name) if case.path.parent.name == "examples" else None
    if check is not None:
        status = outcome.doc["status"]
        assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[:4000]
        check(outcome.doc)
    else:
        check_outcome(case, outcome)
    docker_suite.assert_nothing_left(outcome.workflow.metadata.name)


def test_every_example_runs_here() -> None:
    assert {p.name for p in EXAMPLES} == set(EXAMPLE_CHECKS)


def test_the_secret_never_reaches_the_log(docker_suite: DockerSuite) -> None:
    case = load_case(HERE / "manifests" / "secret-env.yaml")
    docker_suite.outcome(case)
    assert SECRET_VALUE not in docker_suite.server.log.read_text()


def test_host_path_volume_is_the_host_directory(docker_suite: DockerSuite, tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    (shelf / "from-host.txt").write_text("woven on the host\n")
    manifest = f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: host-path-}}
spec:
  entrypoint: main
  volumes:
  - {{name: shelf, hostPath: {{path: {shelf}, type: Directory}}}}
  templates:
  - name: main
    container:
      image: busybox
      command: [sh, -c, "cat /mnt/shelf/from-host.txt && echo 'woven in a container' > /mnt/shelf/from-step.txt"]
      volumeMounts:
      - {{name: shelf, mountPath: /mnt/shelf}}
"""
    case = Case(path=tmp_path / "host-path.yaml", text=manifest, expect={"phase": "Succeeded"})
    outcome = docker_suite.run_now(case)
    assert outcome.doc["status"]["phase"] == "Succeeded", outcome.doc["status"]
    (node,) = (n for n in outcome.doc["status"]["nodes"].values() if n["type"] == "Pod")
    assert node["outputs"]["result"] == "woven on the host"
    assert (shelf / "from-step.txt").read_text() == "woven in a container\n"
    docker_suite.assert_nothing_left(outcome.workflow.metadata.name)


def test_failure_messages_name_their_cause(docker_suite: DockerSuite) -> None:
    """The messages a user reads for the Docker runtime's failures (beyond the substrings the headers check)."""
    missing = docker_suite.outcome(load_case(HERE / "manifests" / "image-missing.yaml"))
    message = missing.doc["status"]["message"]
    assert "treadle-test/absent:1" in message and "pulling it failed" in message, message
    secret = docker_suite.outcome(load_case(HERE / "manifests" / "secret-missing.yaml"))
    message = secret.doc["status"]["message"]
    assert "LOOM_TOKEN" in message and "loom-credentials" in message and "'token'" in message, message


SLEEPER = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: engine-restart-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: nap, template: nap}
  - name: nap
    container: {image: busybox, command: [sleep, "60"]}
"""


def test_a_server_killed_mid_step_resumes_in_new_containers(docker_engine: Any, tmp_path: Path) -> None:
    """The killed server's container is removed when it starts again, and the step runs again as attempt 1."""
    nap = SLEEPER.replace('command: [sleep, "60"]', 'command: [sh, -c, "sleep 3; echo rested"]')
    nap = nap.replace("engine-restart-", "server-restart-")
    args = ["--runtime", "docker", "--docker-host", docker_engine.host]
    first = ServedTreadle(tmp_path, args=args)
    try:
        with SyncTreadleClient(first.address) as client:
            name = str(client.submit(nap).metadata.name)
        api = DockerSuite.engine_api(docker_engine.host)
        try:
            label = {"label": f"treadle.workflow={name}"}
            wait_until(lambda: any(c["State"] == "running" for c in api.containers(filters=label)), 60, "main to run")
        finally:
            api.close()
    finally:
        first.process.kill()  # no clean shutdown: the container is left running
        first.stop()
    second = ServedTreadle(tmp_path, args=args)
    try:
        with SyncTreadleClient(second.address) as client:
            final = client.wait(name, timeout=90)
    finally:
        second.stop()
    (pod,) = (n for n in final.status.nodes.values() if n.type == workflow_pb2.NODE_TYPE_POD)
    assert final.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, final.status
    assert (pod.attempt, pod.outputs.result) == (1, "rested")
    api = DockerSuite.engine_api(docker_engine.host)
    try:
        assert api.containers(all=True, filters={"label": f"treadle.workflow={name}"}) == []
    finally:
        api.close()


def test_labels_and_an_engine_restart_mid_step(docker_suite: DockerSuite, docker_engine: Any) -> None:
    """Last: it restarts the engine under every running step. The step ends with Error naming the restart."""
    if docker_engine.private is None:
        pytest.skip("the engine was not started by this session (TREADLE_TEST_DOCKER_HOST)")
    docker_suite.wait_for_all()
    name = docker_suite.submit(SLEEPER)
    api = docker_suite.engine().api
    try:
        label = {"label": [f"treadle.workflow={name}", "treadle.container=main"]}
        wait_until(lambda: any(c["State"] == "running" for c in api.containers(filters=label)), 60, "main to run")
        (main,) = api.containers(filters=label)
        labels = main["Labels"]
        assert labels["treadle.attempt"] == "0"
        assert labels["treadle.node"].startswith(name)
        docker_engine.private.restart()
    finally:
        api.close()
    with SyncTreadleClient(docker_suite.server.address) as client:
        final = workflow_to_argo_json(client.wait(name, timeout=90))
    (pod,) = (n for n in final["status"]["nodes"].values() if n["type"] == "Pod")
    assert pod["phase"] == "Error", pod
    assert "the Docker engine restarted while the step ran" in pod["message"], pod
    docker_suite.assert_nothing_left(name)
