"""The `treadle` CLI's argo-parity verbs against a live `treadle serve all` process, with real workflows.

suspend/resume, stop/terminate (with and without exit handlers), node set, retry,
resubmit, templates (and submit --from), semaphores, list filters, delete by
filter, parameter files and -o yaml. The CLI acts (in this process, but for one
test of the installed command); a SyncTreadleClient watches for the moments to act at.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
import yaml
from served import ServedTreadle

from treadle.client import SyncTreadleClient, cli
from treadle.workflow.v1 import workflow_pb2 as wf_pb

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TREADLE = str(Path(sys.executable).parent / "treadle")
SPINNING = REPO / "tests" / "conformance" / "manifests" / "templates" / "conformance-spinning.yaml"
SUSPEND_GATE = REPO / "tests" / "conformance" / "manifests" / "suspend-resume.yaml"

CHAIN = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: chain-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: nap}
    - - {name: second, template: say}
  - name: nap
    container: {image: busybox, command: [sh, -c, "sleep 1.2; echo first"]}
  - name: say
    container: {image: busybox, command: [echo, second]}
"""
GATED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: gated-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: say}
    - - {name: gate, template: gate}
  - name: say
    container: {image: busybox, command: [echo, first]}
  - name: gate
    suspend: {}
"""
WITH_EXIT_HANDLER = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: handled-}
spec:
  entrypoint: main
  onExit: goodbye
  templates:
  - name: main
    container: {image: busybox, command: [sh, -c, "sleep 30"]}
  - name: goodbye
    container: {image: busybox, command: [echo, goodbye]}
"""
SEMAPHORE_USERS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: limited-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: user, template: limited, withSequence: {count: "3"}}
  - name: limited
    synchronization:
      semaphore:
        configMapKeyRef: {name: e2e-limits, key: looms}
    container: {image: busybox, command: [sh, -c, "sleep 0.4"]}
"""
QUICK = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: GENERATE}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: busybox, command: [sh, -c, "exit CODE"]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTreadle]:
    served = ServedTreadle(tmp_path_factory.mktemp("cli-control-server"))
    try:
        yield served
    finally:
        log = served.stop()
        assert served.process.returncode == 0, log


@pytest.fixture(scope="module")
def client(server: ServedTreadle) -> Iterator[SyncTreadleClient]:
    with SyncTreadleClient(server.address) as sync_client:
        yield sync_client


def treadle(server: ServedTreadle, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process (a fresh interpreter per call would cost more than the call)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        mock.patch.object(sys, "stdin", io.StringIO(stdin)),
        mock.patch.dict(os.environ, {"TREADLE_SERVER": server.address}),
    ):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # usage errors
            code = int(exc.code or 0)
    return subprocess.CompletedProcess([TREADLE, *args], code, out.getvalue(), err.getvalue())


def test_the_installed_command_reaches_the_server(server: ServedTreadle) -> None:
    environment = {**os.environ, "TREADLE_SERVER": server.address}
    for argv in (["semaphore", "list"], ["template", "list"], ["list", "--running", "--token", "ignored"]):
        proc = subprocess.run([TREADLE, *argv], capture_output=True, text=True, env=environment, timeout=60)
        assert proc.returncode == 0, proc.stderr
    # TLS to a plaintext server: one line of ours, none of grpc's own log.
    proc = subprocess.run([TREADLE, "--secure", "list"], capture_output=True, text=True, env=environment, timeout=60)
    assert proc.returncode == 3
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("treadle: cannot reach"), proc.stderr


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def submit(server: ServedTreadle, manifest: str, *args: str) -> str:
    name = ok(treadle(server, "submit", "-", "-o", "name", *args, stdin=manifest)).strip()
    assert name and "\n" not in name
    return name


def node_named(workflow: wf_pb.Workflow, display_name: str) -> wf_pb.NodeStatus | None:
    return next((n for n in workflow.status.nodes.values() if n.display_name == display_name), None)


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_for_node(client: SyncTreadleClient, name: str, node: str, phase: wf_pb.NodePhase.ValueType) -> None:
    def reached() -> bool:
        found = node_named(client.get(name), node)
        return found is not None and found.phase == phase

    eventually(reached, f"{name}: {node} {wf_pb.NodePhase.Name(phase)}")


def test_suspend_holds_back_the_next_step_until_resume(server: ServedTreadle, client: SyncTreadleClient) -> None:
    name = submit(server, CHAIN)
    wait_for_node(client, name, "first", wf_pb.NODE_PHASE_RUNNING)
    assert ok(treadle(server, "suspend", name)) == f"workflow {name} suspended\n"
    wait_for_node(client, name, "first", wf_pb.NODE_PHASE_SUCCEEDED)
    time.sleep(0.5)
    held = client.get(name)
    second = node_named(held, "second")
    assert held.status.phase == wf_pb.WORKFLOW_PHASE_RUNNING
    assert second is None or second.phase == wf_pb.NODE_PHASE_PENDING
    assert ok(treadle(server, "resume", name)) == f"workflow {name} resumed\n"
    ok(treadle(server, "wait", name))
    # A finished workflow cannot be suspended: one line, and the exit code for server errors.
    refused = treadle(server, "suspend", name)
    assert refused.returncode == 5 and "already succeeded" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_node_set_supplies_a_suspend_nodes_outputs_and_finishes_it(
    server: ServedTreadle, client: SyncTreadleClient
) -> None:
    gate = SUSPEND_GATE.read_text()
    approved, rejected = submit(server, gate), submit(server, gate)
    for name in (approved, rejected):
        wait_for_node(client, name, "approve", wf_pb.NODE_PHASE_RUNNING)
    out = treadle(
        server,
        "node",
        "set",
        approved,
        "--node-field-selector",
        "displayName=approve",
        "--output-parameter",
        "answer=ship it",
        "--phase",
        "succeeded",
    )
    assert ok(out) == f"workflow {approved} node approve set\n"
    ok(treadle(server, "wait", approved))
    assert "act: answer was ship it" in ok(treadle(server, "logs", approved))

    ok(treadle(server, "node", "set", rejected, "--node", "approve", "--phase", "Failed", "--message", "not today"))
    waited = treadle(server, "wait", rejected)
    assert waited.returncode == 1 and waited.stderr.startswith(f"treadle: workflow {rejected} Failed")
    approve = node_named(client.get(rejected), "approve")
    assert approve is not None and approve.message == "not today"


def test_stop_runs_exit_handlers_and_terminate_does_not(server: ServedTreadle, client: SyncTreadleClient) -> None:
    stopped, terminated = submit(server, WITH_EXIT_HANDLER), submit(server, WITH_EXIT_HANDLER)
    for name in (stopped, terminated):
        wait_for_node(client, name, name, wf_pb.NODE_PHASE_RUNNING)
    assert ok(treadle(server, "stop", stopped, "--message", "enough")) == f"workflow {stopped} stopped\n"
    assert ok(treadle(server, "terminate", terminated)) == f"workflow {terminated} terminated\n"
    for name in (stopped, terminated):
        assert treadle(server, "wait", name).returncode == 1
    assert client.get(stopped).status.message == "enough"
    assert "goodbye" in ok(treadle(server, "logs", stopped))
    assert "goodbye" not in ok(treadle(server, "logs", terminated))


def test_retry_reruns_the_failed_step_and_keeps_the_succeeded_one(
    server: ServedTreadle, client: SyncTreadleClient
) -> None:
    # The second step is a suspend node, so stopping it leaves no step process behind.
    name = submit(server, GATED)
    wait_for_node(client, name, "gate", wf_pb.NODE_PHASE_RUNNING)
    ok(treadle(server, "stop", name))
    assert treadle(server, "wait", name).returncode == 1
    first_before = node_named(client.get(name), "first")
    assert first_before is not None and first_before.phase == wf_pb.NODE_PHASE_SUCCEEDED

    assert ok(treadle(server, "retry", name, "-o", "name")) == f"{name}\n"
    wait_for_node(client, name, "gate", wf_pb.NODE_PHASE_RUNNING)
    assert ok(treadle(server, "resume", name, "--node", "gate")) == f"workflow {name} node gate resumed\n"
    final = json.loads(ok(treadle(server, "wait", name, "-o", "json")))
    assert final["status"]["phase"] == "Succeeded"
    first_after = node_named(client.get(name), "first")
    assert first_after is not None and first_after.finished_at == first_before.finished_at  # not run again
    again = treadle(server, "retry", name)
    assert again.returncode == 5 and len(again.stderr.splitlines()) == 1


def test_resubmit_starts_a_labelled_copy(server: ServedTreadle, client: SyncTreadleClient) -> None:
    original = submit(server, QUICK.replace("GENERATE", "resubmitted-").replace("CODE", "0"), "--wait")
    watched = treadle(server, "resubmit", original, "--watch")
    out = ok(watched)
    assert "Status:              Succeeded" in out
    copies = ok(
        treadle(server, "list", "-l", f"workflows.argoproj.io/resubmitted-from-workflow={original}", "-o", "name")
    )
    [copy] = copies.split()
    assert copy.startswith(f"{original}-") and copy in out
    assert client.get(copy).status.phase == wf_pb.WORKFLOW_PHASE_SUCCEEDED


def test_workflow_templates_round_trip_and_run(server: ServedTreadle, tmp_path: Path) -> None:
    assert ok(treadle(server, "template", "lint", "--server", server.address, str(SPINNING))) == f"{SPINNING}: ok\n"
    assert ok(treadle(server, "template", "create", str(SPINNING), "-o", "name")) == "conformance-spinning\n"
    again = treadle(server, "template", "create", str(SPINNING))
    assert again.returncode == 5 and "already exists" in again.stderr
    assert "conformance-spinning" in ok(treadle(server, "template", "list", "-o", "name")).split()
    assert "spin-twice,twist" in ok(treadle(server, "template", "list", "-o", "wide"))

    # get -o yaml writes a manifest that update takes back.
    exported = tmp_path / "spinning.yaml"
    exported.write_text(ok(treadle(server, "template", "get", "conformance-spinning", "-o", "yaml")))
    doc = yaml.safe_load(exported.read_text())
    assert doc["kind"] == "WorkflowTemplate" and doc["spec"]["entrypoint"] == "spin-twice"
    doc["spec"]["arguments"]["parameters"][0]["value"] = "linen"
    exported.write_text(yaml.safe_dump(doc))
    updated = json.loads(ok(treadle(server, "template", "update", str(exported), "-o", "json")))
    assert int(updated["metadata"]["resourceVersion"]) > int(doc["metadata"]["resourceVersion"])

    ran = json.loads(
        ok(treadle(server, "submit", "--from", "workflowtemplate/conformance-spinning", "--wait", "-o", "json"))
    )
    assert ran["status"]["phase"] == "Succeeded"
    assert "twisted twisted linen" in ok(treadle(server, "logs", ran["metadata"]["name"]))

    assert ok(treadle(server, "template", "delete", "conformance-spinning")) == (
        "WorkflowTemplate 'conformance-spinning' deleted\n"
    )
    gone = treadle(server, "template", "get", "conformance-spinning")
    assert gone.returncode == 4 and "not found" in gone.stderr


def test_semaphores_limit_holders_and_are_listed(server: ServedTreadle, client: SyncTreadleClient) -> None:
    assert ok(treadle(server, "semaphore", "set", "e2e-limits/looms", "1")) == "semaphore e2e-limits/looms set to 1\n"
    name = submit(server, SEMAPHORE_USERS)
    most_holders = 0

    def held() -> bool:
        nonlocal most_holders
        [lock] = json.loads(ok(treadle(server, "semaphore", "list", "-o", "json")))
        assert lock["name"] == "semaphore/e2e-limits/looms" and lock["limit"] == 1
        most_holders = max(most_holders, len(lock["holders"]))
        return bool(lock["holders"])

    eventually(held, "a holder of the semaphore")
    ok(treadle(server, "wait", name))
    assert most_holders == 1
    assert "e2e-limits/looms  semaphore  1      0" in ok(treadle(server, "semaphore", "list"))
    assert ok(treadle(server, "semaphore", "delete", "e2e-limits/looms")) == "semaphore e2e-limits/looms deleted\n"
    assert ok(treadle(server, "semaphore", "list", "-o", "name")) == ""


def test_list_filters_and_delete_by_filter(server: ServedTreadle, client: SyncTreadleClient) -> None:
    good = submit(
        server, QUICK.replace("GENERATE", "filtered-good-").replace("CODE", "0"), "-l", "suite=filters,ok=yes"
    )
    bad = submit(server, QUICK.replace("GENERATE", "filtered-bad-").replace("CODE", "3"), "-l", "suite=filters")
    slow = submit(server, WITH_EXIT_HANDLER, "-l", "suite=filters", "--generate-name", "filtered-slow-")
    ok(treadle(server, "wait", good))
    assert treadle(server, "wait", bad).returncode == 1
    selected = ("-l", "suite=filters")

    def names(*args: str) -> set[str]:
        return set(ok(treadle(server, "list", *selected, *args, "-o", "name")).split())

    assert names() == {good, bad, slow}
    assert names("--running") == {slow}
    assert names("--completed") == {good, bad}
    assert names("--status", "Failed") == {bad}
    assert names("--prefix", "filtered-good-") == {good}
    assert set(ok(treadle(server, "list", "-l", "suite=filters,ok=yes", "-o", "name")).split()) == {good}
    wide = ok(treadle(server, "list", *selected, "-o", "wide")).splitlines()
    assert wide[0].split()[-2:] == ["PARAMETERS", "LABELS"] and any("ok=yes,suite=filters" in line for line in wide)

    dry = ok(treadle(server, "delete", "--completed", *selected, "--dry-run"))
    assert sorted(dry.splitlines()) == sorted(f"Workflow '{n}' deleted (dry run)" for n in (good, bad))
    assert names() == {good, bad, slow}
    ok(treadle(server, "delete", "--completed", *selected))
    assert names() == {slow}
    ok(treadle(server, "delete", "--all", *selected))
    assert names() == set()


def test_submit_with_a_parameter_file_waits_and_prints_yaml(server: ServedTreadle, tmp_path: Path) -> None:
    parameters = tmp_path / "parameters.yaml"
    parameters.write_text("greeting: hey\naudience: file\n")
    proc = treadle(
        server,
        "submit",
        "examples/parameters.yaml",
        "-f",
        str(parameters),
        "-p",
        "audience=cli",
        "--wait",
        "-o",
        "yaml",
    )
    final = yaml.safe_load(ok(proc))
    assert final["status"]["phase"] == "Succeeded"
    assert {p["name"]: p["value"] for p in final["spec"]["arguments"]["parameters"]} == {
        "greeting": "hey",
        "audience": "cli",
    }
    assert "hey, cli!" in ok(treadle(server, "logs", final["metadata"]["name"]))
    failing = treadle(server, "submit", "-", "--wait", stdin=QUICK.replace("GENERATE", "fails-").replace("CODE", "1"))
    assert failing.returncode == 1 and "Failed" in failing.stderr
