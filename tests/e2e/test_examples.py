"""Whole workflows through the real services, driven by the installed `treadle` command.

- Every manifest in examples/ runs with `treadle run FILE -o json` (the stack
  in-process) and must succeed with the outputs its check names.
- Failures: a failing step exits 1 naming the step and its exit code; bad
  manifests exit non-zero with one line on stderr and store nothing.
- A `treadle serve all` process: submit/get/logs/delete, rejected submissions,
  and a restart in the middle of a run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TREADLE = str(Path(sys.executable).parent / "treadle")
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
MANIFESTS = REPO / "tests" / "e2e" / "manifests"
BAD_MANIFESTS = {
    "malformed.yaml": "malformed YAML",
    "empty.yaml": "empty",
    "unknown-kind.yaml": "CronLoom",
    "unknown-template.yaml": "spin-yarn",
    "cycle.yaml": "cycle",
    "missing-parameter.yaml": "recipient",
    "missing-argument.yaml": "bolt-length",
    "undefined-reference.yaml": "{{inputs.parameters.nope}}",
}

Doc = dict[str, Any]


def treadle(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TREADLE, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout, check=False)


def run_json(path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Doc]:
    proc = treadle("run", str(path), "-o", "json", *args)
    try:
        doc = json.loads(proc.stdout)  # stdout holds the JSON and nothing else
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON (exit {proc.returncode}):\n{proc.stdout}\n--- stderr:\n{proc.stderr}")
    return proc, doc


def nodes_named(doc: Doc) -> dict[str, Doc]:
    """Nodes by display name (step, task or workflow name)."""
    return {node["displayName"]: node for node in doc["status"].get("nodes", {}).values()}


def pod(doc: Doc, name: str) -> Doc:
    node = nodes_named(doc)[name]
    assert node["type"] == "Pod", node
    assert node["phase"] == "Succeeded", node
    return node


def result(doc: Doc, name: str) -> str:
    return str(pod(doc, name)["outputs"]["result"])


def parameter(node: Doc, name: str) -> str:
    values = {p["name"]: p.get("value") for p in node.get("outputs", {}).get("parameters", [])}
    return str(values[name])


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("treadle: "), lines[0]
    return lines[0]


# -- what each example must produce ---------------------------------------------------


def check_hello_world(doc: Doc) -> None:
    (node,) = (n for n in doc["status"]["nodes"].values() if n["type"] == "Pod")
    assert node["outputs"]["result"] == "the loom is threaded and ready"
    assert node["exitCode"] == "0"
    assert doc["metadata"]["labels"] == {"example": "hello-world"}
    assert doc["metadata"]["name"].startswith("hello-world-")


def check_steps(doc: Doc) -> None:
    threads = {"warp": "warp", "weft-red": "red weft", "weft-blue": "blue weft", "finish": "selvedge"}
    for step, thread in threads.items():
        assert result(doc, step) == f"shuttle carries the {thread}"
    nodes = doc["status"]["nodes"]
    groups = [n for n in nodes.values() if n["type"] == "StepGroup"]
    members = sorted(sorted(nodes[c]["displayName"] for c in g.get("children", [])) for g in groups)
    assert members == [["finish"], ["warp"], ["weft-blue", "weft-red"]]
    assert doc["status"]["progress"] == "4/4"


def check_dag_diamond(doc: Doc) -> None:
    numbers = {task: parameter(pod(doc, task), "number") for task in ("seed", "double", "add-ten", "combine")}
    assert numbers == {"seed": "3", "double": "6", "add-ten": "13", "combine": "19"}
    dag = next(n for n in doc["status"]["nodes"].values() if n["type"] == "DAG")
    assert parameter(dag, "total") == "19"
    assert result(doc, "combine") == "6 + 13 = 19"


def check_output_parameters(doc: Doc) -> None:
    picked = pod(doc, "pick-colour")
    assert parameter(picked, "colour") == "teal"
    assert parameter(picked, "mood") == "calm"  # valueFrom.default: the file was never written
    assert result(doc, "paint") == "painting the shed teal, feeling calm"
    published = {p["name"]: p["value"] for p in doc["status"]["outputs"]["parameters"]}
    assert published == {"chosen-colour": "teal", "shed-report": "painting the shed teal, feeling calm"}


def check_artifact_passing(doc: Doc) -> None:
    assert result(doc, "unpack").splitlines() == [
        "crate packed at the mill",
        "three spools of linen",
        "one brass shuttle",
        "handle with care",
    ]
    produced = {a["name"] for a in pod(doc, "pack")["outputs"]["artifacts"]}
    assert {"label", "crate"} <= produced


def check_script_result(doc: Doc) -> None:
    assert result(doc, "count-threads") == "22"
    assert result(doc, "report") == "the loom holds 22 threads"


def check_parameters(doc: Doc) -> None:
    assert result(doc, "say-it") == "hello, weavers!"
    inputs = pod(doc, "say-it")["inputs"]["parameters"]
    assert any(p["name"] == "punctuation" and p.get("value") == "!" for p in inputs), inputs  # the input's default


CHECKS: dict[str, Callable[[Doc], None]] = {
    "hello-world.yaml": check_hello_world,
    "steps.yaml": check_steps,
    "dag-diamond.yaml": check_dag_diamond,
    "output-parameters.yaml": check_output_parameters,
    "artifact-passing.yaml": check_artifact_passing,
    "script-result.yaml": check_script_result,
    "parameters.yaml": check_parameters,
}


def test_every_example_has_a_check() -> None:
    assert sorted(p.name for p in EXAMPLES) == sorted(CHECKS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_to_success(example: Path) -> None:
    proc, doc = run_json(example)
    assert proc.returncode == 0, proc.stderr
    assert doc["status"]["phase"] == "Succeeded", doc["status"]
    assert doc["status"]["startedAt"] <= doc["status"]["finishedAt"]
    CHECKS[example.name](doc)


def test_parameters_can_be_overridden() -> None:
    proc, doc = run_json(REPO / "examples" / "parameters.yaml", "-p", "audience=spinners")
    assert proc.returncode == 0, proc.stderr
    assert result(doc, "say-it") == "hello, spinners!"
    assert {"name": "audience", "value": "spinners"} in doc["spec"]["arguments"]["parameters"]


def test_a_required_argument_can_come_from_p() -> None:
    proc, doc = run_json(MANIFESTS / "missing-argument.yaml", "-p", "bolt-length=12")
    assert proc.returncode == 0, proc.stderr
    (node,) = (n for n in doc["status"]["nodes"].values() if n["type"] == "Pod")
    assert node["outputs"]["result"] == "cutting 12 metres"


def test_run_prints_the_node_tree_by_default() -> None:
    proc = treadle("run", "examples/steps.yaml")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^Status:\s+Succeeded$", proc.stdout, re.M)
    assert re.search(r"^ ├─┬─✔ weft-(red|blue)\s+shuttle", proc.stdout, re.M), proc.stdout
    assert re.search(r"^ └───✔ finish\s+shuttle", proc.stdout, re.M), proc.stdout


def test_a_failing_step_fails_the_run_naming_step_and_exit_code() -> None:
    proc, doc = run_json(MANIFESTS / "failing-step.yaml")
    assert proc.returncode == 1
    status = doc["status"]
    assert status["phase"] == "Failed"
    assert "snap-thread" in status["message"] and re.search(r"\b3\b", status["message"]), status["message"]
    failed = nodes_named(doc)["snap-thread"]
    assert failed["phase"] == "Failed" and failed["exitCode"] == "3"
    assert "never-runs" not in nodes_named(doc)
    line = one_error_line(proc)
    assert "Failed" in line and "snap-thread" in line


@pytest.mark.parametrize("name", sorted(BAD_MANIFESTS))
def test_run_rejects_bad_input_in_one_line(name: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    proc = treadle("run", f"tests/e2e/manifests/{name}", "-o", "json", "--data-dir", str(data_dir))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line.startswith(f"treadle: tests/e2e/manifests/{name}: ")
    assert BAD_MANIFESTS[name] in line
    assert proc.stdout == ""
    assert not data_dir.exists()


def test_run_of_a_missing_file_names_it() -> None:
    proc = treadle("run", "examples/not-here.yaml")
    assert proc.returncode == 2
    assert one_error_line(proc) == "treadle: examples/not-here.yaml: no such file"


# -- against a `treadle serve all` process -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        port_file = self.data_dir.parent / f"port-{time.monotonic_ns()}"
        command = [TREADLE, "serve", "all", "--listen", self.address, "--data-dir", str(self.data_dir)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port-file", str(port_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"treadle serve did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return treadle(*args, "--server", self.address, timeout=timeout)

    def json(self, *args: str) -> Any:
        proc = self.cli(*args, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(data_dir=tmp_path / "data", port=free_port(), log=tmp_path / "server.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        if os.environ.get("TREADLE_E2E_SHOW_SERVER_LOG"):
            print(srv.log.read_text())


def test_server_rejects_bad_manifests_and_stores_nothing(server: Server) -> None:
    for name, needle in BAD_MANIFESTS.items():
        path = f"tests/e2e/manifests/{name}"
        proc = server.cli("submit", path)
        assert proc.returncode == 2, (name, proc.stderr)
        line = one_error_line(proc)
        assert line.startswith(f"treadle: {path}: "), line
        assert needle in line, line
        lint = server.cli("lint", path)
        assert lint.returncode == 2 and needle in one_error_line(lint)
    assert server.json("list") == []


def test_submit_wait_get_logs_delete(server: Server) -> None:
    submitted = server.cli("submit", "examples/steps.yaml", "-o", "name")
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.strip()
    assert name.startswith("loom-steps-")
    waited = server.cli("wait", name, "--timeout", "60")
    assert waited.returncode == 0, waited.stderr
    doc = server.json("get", name)
    assert doc["status"]["phase"] == "Succeeded"
    tree = server.cli("get", name)
    assert re.search(r"^Status:\s+Succeeded$", tree.stdout, re.M) and "weft-red" in tree.stdout
    assert [d["metadata"]["name"] for d in server.json("list")] == [name]
    logs = server.cli("logs", name)
    assert logs.returncode == 0, logs.stderr
    assert "weft-red: shuttle carries the red weft" in logs.stdout.splitlines()
    only = server.cli("logs", name, "--node", "warp")
    assert only.stdout.splitlines() == ["warp: shuttle carries the warp"]
    deleted = server.cli("delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert server.json("list") == []
    missing = server.cli("get", name)
    assert missing.returncode == 4 and name in one_error_line(missing)


def test_submit_watch_reports_failure(server: Server) -> None:
    proc = server.cli("submit", "tests/e2e/manifests/failing-step.yaml", "--watch", "-o", "json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"]["phase"] == "Failed"
    assert "snap-thread" in one_error_line(proc)


def test_a_workflow_survives_a_server_restart(server: Server) -> None:
    submitted = server.cli("submit", "tests/e2e/manifests/sleepy.yaml", "-o", "name")
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.strip()
    deadline = time.monotonic() + 30
    while True:  # stop the server while the 2-second nap runs
        nap = nodes_named(server.json("get", name)).get("nap", {})
        if nap.get("phase") == "Running":
            break
        assert time.monotonic() < deadline, "the nap step never started"
        time.sleep(0.05)
    assert server.stop(signal.SIGTERM) == 0

    server.start()
    assert name in server.cli("list", "-o", "name").stdout.split()
    waited = server.cli("wait", name, "--timeout", "60")
    assert waited.returncode == 0, (waited.stderr, server.log.read_text())
    doc = server.json("get", name)
    assert doc["status"]["phase"] == "Succeeded"
    assert result(doc, "wake") == "awake"
