"""The conformance harness: read a manifest's `# expect:` header, run it on a server, check the outcome.

Each manifest in manifests/ starts with a comment block holding its expectations
in YAML (see README.md next to this file for every key). The harness submits the
manifest to one `treadle serve all` process through the Python client, performs
the header's `actions` (resume, set-node, stop, ...) while it runs, waits for the
final phase and compares what the header names. A manifest that must be rejected
names the error text instead and must leave nothing stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from treadle.admission.v1 import admission_pb2 as adm
from treadle.admission.v1 import admission_pb2_grpc as adm_grpc
from treadle.client import SyncTreadleClient, TreadleError, workflow_to_argo_json
from treadle.client.argo_json import NODE_PHASES, workflow_phase_name
from treadle.grpcutil.status import error_from_rpc
from treadle.workflow.v1 import workflow_pb2 as wf_pb

HERE = Path(__file__).resolve().parent
MANIFESTS = HERE / "manifests"
TREADLE = str(Path(sys.executable).parent / "treadle")
# How long one workflow may take before the case fails; every manifest is meant to finish in well under 3 s.
WORKFLOW_TIMEOUT = 30.0
POLL = 0.03
TRANSIENT_PATTERN = "treadle-transient-glitch"

Doc = dict[str, Any]


# -- the header -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One manifest and what it must do."""

    path: Path
    text: str
    expect: Doc

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def rejected(self) -> bool:
        return "error" in self.expect


def read_header(text: str) -> Doc:
    """The YAML mapping under `# expect:` in the leading comment block."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "expect:")
    except StopIteration:
        raise ValueError("no '# expect:' header") from None
    parsed = yaml.safe_load("\n".join(lines[start:]))
    if not isinstance(parsed, dict) or not isinstance(parsed.get("expect"), dict):
        raise ValueError("the '# expect:' header is not a YAML mapping")
    expect: Doc = parsed["expect"]
    return expect


def load_case(path: Path) -> Case:
    text = path.read_text()
    return Case(path=path, text=text, expect=read_header(text))


def all_cases() -> list[Case]:
    return [load_case(p) for p in sorted(MANIFESTS.glob("*.yaml"))]


# -- the server -------------------------------------------------------------------


@dataclass
class Server:
    """A `treadle serve all` process with a client and a raw admission stub for the control verbs."""

    address: str
    process: subprocess.Popen[bytes]
    log: Path
    scratch_root: Path
    client: SyncTreadleClient
    channel: grpc.Channel
    admission: adm_grpc.AdmissionServiceStub
    created_templates: set[str] = field(default_factory=set)

    def scratch(self, case: Case) -> Path:
        """A fresh directory outside /tmp (each step has a private /tmp) that steps of this case may share."""
        path = self.scratch_root / f"{case.name}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path


def server_env() -> dict[str, str]:
    # Argo's controller reads TRANSIENT_ERROR_PATTERN to widen OnTransientError; retry-policy-on-transient-error uses it.
    return {**os.environ, "TRANSIENT_ERROR_PATTERN": TRANSIENT_PATTERN}


@contextmanager
def running_server(extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """A `treadle serve all` process (extra_args: more serve options, such as --runtime docker; env: more variables)."""
    base = Path(tempfile.mkdtemp(prefix="treadle-conformance-"))
    # /var/tmp, not /tmp: the local runtime gives every step a private /tmp.
    scratch_root = Path(tempfile.mkdtemp(prefix="treadle-conformance-", dir="/var/tmp"))
    port_file = base / "port"
    log = base / "server.log"
    command = [TREADLE, "serve", "all", "--listen", "127.0.0.1:0", "--data-dir", str(base / "data"), *extra_args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--port-file", str(port_file)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**server_env(), **(env or {})},
        )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"treadle serve did not start:\n{log.read_text()}")
            time.sleep(0.02)
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        channel = grpc.insecure_channel(address)
        with SyncTreadleClient(address) as client:
            yield Server(
                address=address,
                process=process,
                log=log,
                scratch_root=scratch_root,
                client=client,
                channel=channel,
                admission=adm_grpc.AdmissionServiceStub(channel),
            )
        channel.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if os.environ.get("TREADLE_CONFORMANCE_SHOW_SERVER_LOG"):
            print(log.read_text())
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(scratch_root, ignore_errors=True)


# -- running one case -------------------------------------------------------------


@dataclass
class Outcome:
    workflow: wf_pb.Workflow
    doc: Doc
    seconds: float


def stored_count(server: Server) -> int:
    return len(server.client.list())


def check_rejected(server: Server, case: Case) -> None:
    """The submission fails with every expected text, and nothing is stored."""
    wanted = case.expect["error"]
    needles = [wanted] if isinstance(wanted, str) else list(wanted)
    before = stored_count(server)
    try:
        workflow = server.client.submit(case.text, parameters=_parameters(case, None))
    except TreadleError as exc:
        message = str(exc)
    else:
        raise AssertionError(f"{case.name}: expected a rejection, but {workflow.metadata.name} was admitted")
    for needle in needles:
        assert needle in message, f"{case.name}: {needle!r} not in the error {message!r}"
    assert stored_count(server) == before, f"{case.name}: a rejected workflow was stored"


def run_case(server: Server, case: Case) -> Outcome:
    """Submit, perform the header's actions, wait for the final phase."""
    scratch = server.scratch(case) if case.expect.get("scratch") else None
    for template in case.expect.get("workflowTemplates") or []:
        _ensure_template(server, str(template))
    for semaphore, limit in (case.expect.get("semaphores") or {}).items():
        _set_semaphore(server, str(semaphore), int(limit))
    started = time.monotonic()
    submitted = server.client.submit(case.text, parameters=_parameters(case, scratch))
    name = submitted.metadata.name
    for action in case.expect.get("actions") or []:
        name = _perform(server, name, action)
    final = server.client.wait(name, timeout=WORKFLOW_TIMEOUT)
    seconds = time.monotonic() - started
    if scratch is not None:
        _check_scratch(case, scratch)
    return Outcome(workflow=final, doc=workflow_to_argo_json(final), seconds=seconds)


def _parameters(case: Case, scratch: Path | None) -> dict[str, str]:
    params = {str(k): _text(v) for k, v in (case.expect.get("parameters") or {}).items()}
    if scratch is not None:
        params["scratch"] = str(scratch)
    return params


def _ensure_template(server: Server, file_name: str) -> None:
    if file_name in server.created_templates:
        return
    from treadle.templates.v1 import templates_pb2 as tpl
    from treadle.templates.v1 import templates_pb2_grpc as tpl_grpc

    stub = tpl_grpc.WorkflowTemplateServiceStub(server.channel)
    text = (MANIFESTS / "templates" / file_name).read_text()
    try:
        stub.CreateWorkflowTemplate(tpl.CreateWorkflowTemplateRequest(request_id=file_name, manifest=text), timeout=10)
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from None
    server.created_templates.add(file_name)


def _set_semaphore(server: Server, name: str, limit: int) -> None:
    """Semaphores are treadle objects (Argo keeps their limits in ConfigMaps), created through SchedulerService."""
    from treadle.scheduler.v1 import scheduler_pb2 as sch
    from treadle.scheduler.v1 import scheduler_pb2_grpc as sch_grpc

    stub = sch_grpc.SchedulerServiceStub(server.channel)
    try:
        stub.SetSemaphore(sch.SetSemaphoreRequest(name=name, limit=limit), timeout=10)
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from None


# -- actions ------------------------------------------------------------------------

NODE_PHASE_BY_NAME = {word: phase for phase, word in NODE_PHASES.items()}


def _perform(server: Server, name: str, action: Doc) -> str:
    """Wait for the action's condition, then do it. Returns the workflow to follow from now on."""
    wait = action.get("wait")
    if wait == "final":
        server.client.wait(name, timeout=WORKFLOW_TIMEOUT)
    elif isinstance(wait, dict) and not wait.get("node"):
        _wait_for_workflow(server, name, str(wait.get("phase", "Running")))
    elif isinstance(wait, dict):
        _wait_for_node(server, name, str(wait["node"]), str(wait.get("phase", "Running")))
    elif wait is not None:
        raise ValueError(f"unknown wait {wait!r}")
    verb = str(action["do"])
    if verb not in VERBS:
        raise ValueError(f"unknown action {verb!r}")
    try:
        return VERBS[verb](server.admission, name, action, str(uuid.uuid4())) or name
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from None


Verb = Callable[[adm_grpc.AdmissionServiceStub, str, Doc, str], str | None]


def _suspend(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> None:
    stub.SuspendWorkflow(adm.SuspendWorkflowRequest(name=name, request_id=rid), timeout=10)


def _resume(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> None:
    stub.ResumeWorkflow(adm.ResumeWorkflowRequest(name=name, node=action.get("node", ""), request_id=rid), timeout=10)


def _stop(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> None:
    request = adm.StopWorkflowRequest(name=name, message=action.get("message", ""), request_id=rid)
    stub.StopWorkflow(request, timeout=10)


def _terminate(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> None:
    request = adm.TerminateWorkflowRequest(name=name, message=action.get("message", ""), request_id=rid)
    stub.TerminateWorkflow(request, timeout=10)


def _set_node(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> None:
    request = adm.SetWorkflowNodeRequest(
        name=name,
        node=str(action["node"]),
        output_parameters={str(k): _text(v) for k, v in (action.get("outputs") or {}).items()},
        phase=NODE_PHASE_BY_NAME.get(str(action.get("phase", "")), wf_pb.NODE_PHASE_UNSPECIFIED),
        message=action.get("message", ""),
        request_id=rid,
    )
    stub.SetWorkflowNode(request, timeout=10)


def _retry(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> None:
    stub.RetryWorkflow(adm.RetryWorkflowRequest(name=name, request_id=rid), timeout=10)


def _resubmit(stub: adm_grpc.AdmissionServiceStub, name: str, action: Doc, rid: str) -> str:
    params = {str(k): _text(v) for k, v in (action.get("parameters") or {}).items()}
    request = adm.ResubmitWorkflowRequest(name=name, parameters=params, request_id=rid)
    return str(stub.ResubmitWorkflow(request, timeout=10).workflow.metadata.name)


VERBS: dict[str, Verb] = {
    "suspend": _suspend,
    "resume": _resume,
    "stop": _stop,
    "terminate": _terminate,
    "set-node": _set_node,
    "retry": _retry,
    "resubmit": _resubmit,
}


def _wait_for_workflow(server: Server, name: str, phase: str) -> None:
    deadline = time.monotonic() + WORKFLOW_TIMEOUT
    seen = ""
    while time.monotonic() < deadline:
        seen = workflow_phase_name(server.client.get(name).status.phase)
        if seen == phase:
            return
        time.sleep(POLL)
    raise AssertionError(f"workflow {name} never reached {phase} (last seen: {seen or 'unset'})")


def _wait_for_node(server: Server, name: str, display: str, phase: str) -> None:
    deadline = time.monotonic() + WORKFLOW_TIMEOUT
    seen = ""
    while time.monotonic() < deadline:
        workflow = server.client.get(name)
        for node in workflow.status.nodes.values():
            if node.display_name == display:
                seen = NODE_PHASES.get(node.phase, "")
                if seen == phase:
                    return
        time.sleep(POLL)
    raise AssertionError(f"node {display!r} of {name} never reached {phase} (last seen: {seen or 'absent'})")


def _check_scratch(case: Case, scratch: Path) -> None:
    spec = case.expect["scratch"]
    if not isinstance(spec, dict):
        return
    time.sleep(float(spec.get("settle", 0)))
    for file_name in spec.get("absent") or []:
        assert not (scratch / file_name).exists(), f"{file_name} was written: a process outlived its step"
    for file_name, text in (spec.get("files") or {}).items():
        assert (scratch / file_name).read_text().strip() == str(text), file_name


# -- comparing ------------------------------------------------------------------------


def check_outcome(case: Case, outcome: Outcome) -> None:
    """Compare everything the header names with the final workflow."""
    expect, status = case.expect, outcome.doc["status"]
    context = f"{case.name}: status {json.dumps(_summary(outcome.doc), indent=1)}"
    assert status.get("phase") == expect.get("phase", "Succeeded"), context
    if "message" in expect:
        assert str(expect["message"]) in status.get("message", ""), context
    for display, wanted in (expect.get("nodes") or {}).items():
        _check_nodes(outcome.workflow, str(display), wanted or {}, context)
    for key, value in ((expect.get("outputs") or {}).get("parameters") or {}).items():
        published = {p["name"]: p.get("value") for p in (status.get("outputs") or {}).get("parameters") or []}
        assert key in published, f"workflow output {key!r} missing; {context}"
        _same(value, published[key], f"workflow output {key!r}; {context}")
    bounds = expect.get("duration") or {}
    if "max" in bounds:
        assert outcome.seconds <= float(bounds["max"]), f"took {outcome.seconds:.2f}s; {context}"
    if "min" in bounds:
        assert outcome.seconds >= float(bounds["min"]), f"took {outcome.seconds:.2f}s; {context}"
    if "concurrency" in expect:
        _check_concurrency(outcome.workflow, expect["concurrency"], context)


def _check_nodes(workflow: wf_pb.Workflow, display: str, wanted: Doc, context: str) -> None:
    nodes = workflow.status.nodes.values()
    found = [n for n in nodes if n.display_name == display]
    if not found and display.startswith("."):
        # A key starting with "." matches the end of full node names (hook nodes of the workflow itself).
        found = [n for n in nodes if n.name.endswith(display)]
    where = f"node {display!r}; {context}"
    if wanted.get("absent"):
        assert not found, f"expected no {where}"
        return
    assert found, f"missing {where}"
    if "count" in wanted:
        assert len(found) == int(wanted["count"]), f"{len(found)} nodes; {where}"
    for node in found:
        doc = _node_doc(node)
        for key in ("phase", "type", "templateName"):
            if key in wanted:
                assert doc.get(key) == wanted[key], f"{key} {doc.get(key)!r}; {where}"
        if "message" in wanted:
            assert str(wanted["message"]) in doc.get("message", ""), f"message {doc.get('message')!r}; {where}"
        outputs = doc.get("outputs") or {}
        for key in ("result", "exitCode"):
            if key in wanted:
                assert key in outputs, f"no {key}; {where}"
                _same(wanted[key], outputs[key], f"{key}; {where}")
        params = {p["name"]: p.get("value") for p in outputs.get("parameters") or []}
        for key, value in (wanted.get("parameters") or {}).items():
            assert key in params, f"no output parameter {key!r}; {where}"
            _same(value, params[key], f"output parameter {key!r}; {where}")
        inputs = {p["name"]: p.get("value") for p in (doc.get("inputs") or {}).get("parameters") or []}
        for key, value in (wanted.get("inputs") or {}).items():
            assert key in inputs, f"no input parameter {key!r}; {where}"
            _same(value, inputs[key], f"input parameter {key!r}; {where}")
        if "children" in wanted:
            assert len(node.children) == int(wanted["children"]), f"{len(node.children)} children; {where}"
        if "minSeconds" in wanted:
            took = _seconds(node)
            assert took is not None and took >= float(wanted["minSeconds"]), f"took {took}; {where}"


def _check_concurrency(workflow: wf_pb.Workflow, spec: Doc, context: str) -> None:
    """The most pods of one template that ran at the same time, from the nodes' own timestamps."""
    pods = [
        n
        for n in workflow.status.nodes.values()
        if n.type == wf_pb.NODE_TYPE_POD and n.template_name == spec["template"] and n.HasField("started_at")
    ]
    events: list[tuple[int, int]] = []
    for n in pods:
        events.append((n.started_at.ToNanoseconds(), 1))
        events.append((n.finished_at.ToNanoseconds(), -1))
    running = peak = 0
    for _, delta in sorted(events):  # an end sorts before a start at the same instant
        running += delta
        peak = max(peak, running)
    if "max" in spec:
        assert peak <= int(spec["max"]), f"{peak} pods of {spec['template']} ran at once; {context}"
    if "min" in spec:
        assert peak >= int(spec["min"]), f"only {peak} pods of {spec['template']} ran at once; {context}"


def _seconds(node: wf_pb.NodeStatus) -> float | None:
    if not node.HasField("started_at") or not node.HasField("finished_at"):
        return None
    return (node.finished_at.ToNanoseconds() - node.started_at.ToNanoseconds()) / 1e9


def _node_doc(node: wf_pb.NodeStatus) -> Doc:
    from treadle.client.argo_json import node_json

    return node_json(node)


def _same(expected: Any, actual: Any, where: str) -> None:
    """Strings compare exactly; lists, maps and numbers compare with the actual text parsed as JSON."""
    if isinstance(expected, str):
        assert actual == expected, f"{actual!r} != {expected!r}: {where}"
        return
    try:
        parsed = json.loads(actual)
    except (TypeError, json.JSONDecodeError):
        raise AssertionError(f"{actual!r} is not JSON, expected {expected!r}: {where}") from None
    assert parsed == expected, f"{actual!r} != {expected!r}: {where}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _summary(doc: Doc) -> Doc:
    """The parts of a final workflow worth printing when a case fails."""
    status = doc["status"]
    nodes = [
        {
            k: v
            for k, v in node.items()
            if k in ("displayName", "type", "phase", "message", "outputs", "templateName") and v
        }
        for node in status.get("nodes", {}).values()
    ]
    return {
        "phase": status.get("phase"),
        "message": status.get("message"),
        "outputs": status.get("outputs"),
        "nodes": nodes,
    }
