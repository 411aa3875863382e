"""AdmissionService over real gRPC, against fake scheduler, outputs and artifact services."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from treadle.admission.v1 import admission_pb2, admission_pb2_grpc
from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.errors import FailedPrecondition
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import RunningServer, ServiceBinding, create_server
from treadle.grpcutil.status import abort_with
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from treadle.services.admission.reconciler import HandOffReconciler
from treadle.services.admission.setup import AdmissionApp, build
from treadle.spec.convert import workflow_from_dict
from treadle.store.sqlite import open_database
from treadle.workflow.v1 import workflow_pb2

Context = grpc.aio.ServicerContext[Any, Any]
TOKENS = StepTokens(b"0123456789abcdef-test-secret")
FINAL = (workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, workflow_pb2.WORKFLOW_PHASE_FAILED, workflow_pb2.WORKFLOW_PHASE_ERROR)

MANIFEST = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-
  labels: {team: a}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: who, value: world}]
  templates:
  - name: main
    container:
      image: busybox
      command: [echo, "hello {{workflow.parameters.who}}"]
"""


def typed_workflow(name: str) -> workflow_pb2.Workflow:
    return workflow_from_dict(
        {
            "metadata": {"name": name},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "busybox"}}]},
        }
    )


class FakeScheduler(scheduler_pb2_grpc.SchedulerServiceServicer):
    """Keeps started workflows in memory; `down` makes every call UNAVAILABLE."""

    def __init__(self) -> None:
        self.down = False
        self.started: dict[str, workflow_pb2.Workflow] = {}
        self.statuses: dict[str, workflow_pb2.WorkflowStatus] = {}
        self.versions: dict[str, int] = defaultdict(int)
        self.deleted: list[str] = []
        self.controls: list[tuple[str, str]] = []
        self.changed = asyncio.Condition()

    async def _check_up(self, context: Context) -> None:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scheduler is down")

    async def set_status(self, name: str, status: workflow_pb2.WorkflowStatus) -> None:
        async with self.changed:
            self.statuses[name] = status
            self.versions[name] += 1
            self.changed.notify_all()

    async def StartWorkflow(
        self, request: scheduler_pb2.StartWorkflowRequest, context: Context
    ) -> scheduler_pb2.StartWorkflowResponse:
        await self._check_up(context)
        name = request.workflow.metadata.name
        if name in self.started:
            return scheduler_pb2.StartWorkflowResponse(started=False)
        self.started[name] = request.workflow
        await self.set_status(name, workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_RUNNING))
        return scheduler_pb2.StartWorkflowResponse(started=True)

    async def GetWorkflowStatus(
        self, request: scheduler_pb2.GetWorkflowStatusRequest, context: Context
    ) -> scheduler_pb2.GetWorkflowStatusResponse:
        await self._check_up(context)
        if request.name not in self.statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"workflow {request.name} not found")
        status = workflow_pb2.WorkflowStatus()
        status.CopyFrom(self.statuses[request.name])
        if request.omit_nodes:
            status.ClearField("nodes")
        return scheduler_pb2.GetWorkflowStatusResponse(status=status, resource_version=self.versions[request.name])

    async def BatchGetWorkflowStatus(
        self, request: scheduler_pb2.BatchGetWorkflowStatusRequest, context: Context
    ) -> scheduler_pb2.BatchGetWorkflowStatusResponse:
        await self._check_up(context)
        statuses = {}
        for name in request.names:
            if name in self.statuses:
                status = workflow_pb2.WorkflowStatus()
                status.CopyFrom(self.statuses[name])
                status.ClearField("nodes")
                statuses[name] = status
        return scheduler_pb2.BatchGetWorkflowStatusResponse(statuses=statuses)

    async def WatchWorkflowStatus(
        self, request: scheduler_pb2.WatchWorkflowStatusRequest, context: Context
    ) -> AsyncIterator[scheduler_pb2.WatchWorkflowStatusResponse]:
        await self._check_up(context)
        sent = 0
        while True:
            async with self.changed:
                while self.versions[request.name] <= sent:
                    await self.changed.wait()
                status, sent = self.statuses[request.name], self.versions[request.name]
            yield scheduler_pb2.WatchWorkflowStatusResponse(status=status, resource_version=sent)
            if status.phase in FINAL:
                return

    async def DeleteWorkflow(
        self, request: scheduler_pb2.DeleteWorkflowRequest, context: Context
    ) -> scheduler_pb2.DeleteWorkflowResponse:
        await self._check_up(context)
        if request.name not in self.started:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"workflow {request.name} not found")
        self.deleted.append(request.name)
        del self.started[request.name], self.statuses[request.name]
        return scheduler_pb2.DeleteWorkflowResponse()

    async def _control(self, verb: str, name: str, context: Context, phase: int | None = None) -> None:
        """Lifecycle calls: recorded, refused for a finished workflow as the real scheduler does."""
        await self._check_up(context)
        if name not in self.statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"workflow {name} not found")
        if self.statuses[name].phase in FINAL and verb != "retry":
            await abort_with(
                context, FailedPrecondition(f"cannot {verb} {name}: finished", subject=f"workflows/{name}")
            )
        self.controls.append((verb, name))
        await self.set_status(name, workflow_pb2.WorkflowStatus(phase=phase or self.statuses[name].phase))

    async def SuspendWorkflow(
        self, request: scheduler_pb2.SuspendWorkflowRequest, context: Context
    ) -> scheduler_pb2.SuspendWorkflowResponse:
        await self._control("suspend", request.name, context)
        return scheduler_pb2.SuspendWorkflowResponse(status=self.statuses[request.name])

    async def ResumeWorkflow(
        self, request: scheduler_pb2.ResumeWorkflowRequest, context: Context
    ) -> scheduler_pb2.ResumeWorkflowResponse:
        await self._control(f"resume:{request.node}", request.name, context)
        return scheduler_pb2.ResumeWorkflowResponse(status=self.statuses[request.name])

    async def StopWorkflow(
        self, request: scheduler_pb2.StopWorkflowRequest, context: Context
    ) -> scheduler_pb2.StopWorkflowResponse:
        await self._control(f"stop:{request.message}", request.name, context, workflow_pb2.WORKFLOW_PHASE_FAILED)
        return scheduler_pb2.StopWorkflowResponse(status=self.statuses[request.name])

    async def TerminateWorkflow(
        self, request: scheduler_pb2.TerminateWorkflowRequest, context: Context
    ) -> scheduler_pb2.TerminateWorkflowResponse:
        await self._control(f"terminate:{request.message}", request.name, context, workflow_pb2.WORKFLOW_PHASE_FAILED)
        return scheduler_pb2.TerminateWorkflowResponse(status=self.statuses[request.name])

    async def SetWorkflowNode(
        self, request: scheduler_pb2.SetWorkflowNodeRequest, context: Context
    ) -> scheduler_pb2.SetWorkflowNodeResponse:
        supplied = ",".join(f"{k}={v}" for k, v in sorted(request.output_parameters.items()))
        await self._control(f"set:{request.node}:{supplied}:{request.phase}", request.name, context)
        return scheduler_pb2.SetWorkflowNodeResponse(status=self.statuses[request.name])

    async def RetryWorkflow(
        self, request: scheduler_pb2.RetryWorkflowRequest, context: Context
    ) -> scheduler_pb2.RetryWorkflowResponse:
        await self._control("retry", request.name, context, workflow_pb2.WORKFLOW_PHASE_RUNNING)
        return scheduler_pb2.RetryWorkflowResponse(status=self.statuses[request.name])


class FakeOutputs(outputs_pb2_grpc.OutputServiceServicer):
    def __init__(self) -> None:
        self.reports: dict[tuple[str, str], outputs_pb2.ReportStepOutputsRequest] = {}
        self.deleted: list[str] = []

    async def GetStepOutputs(
        self, request: outputs_pb2.GetStepOutputsRequest, context: Context
    ) -> outputs_pb2.GetStepOutputsResponse:
        assert request.attempt == -1
        report = self.reports.get((request.workflow, request.node_id))
        if report is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no report")
        return outputs_pb2.GetStepOutputsResponse(report=report)

    async def DeleteWorkflowOutputs(
        self, request: outputs_pb2.DeleteWorkflowOutputsRequest, context: Context
    ) -> outputs_pb2.DeleteWorkflowOutputsResponse:
        self.deleted.append(request.workflow)
        return outputs_pb2.DeleteWorkflowOutputsResponse(deleted=0)


class FakeArtifacts(artifacts_pb2_grpc.ArtifactServiceServicer):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def DownloadArtifact(
        self, request: artifacts_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[artifacts_pb2.DownloadArtifactResponse]:
        data = self.objects[request.key]
        info = artifacts_pb2.ArtifactInfo(
            key=request.key, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        yield artifacts_pb2.DownloadArtifactResponse(info=info)
        for start in range(0, len(data), 4):  # tiny chunks: lines cross chunk borders
            yield artifacts_pb2.DownloadArtifactResponse(chunk=data[start : start + 4])


@dataclass
class Harness:
    stub: admission_pb2_grpc.AdmissionServiceAsyncStub
    scheduler: FakeScheduler
    outputs: FakeOutputs
    artifacts: FakeArtifacts
    app: AdmissionApp


@asynccontextmanager
async def peers_server() -> AsyncIterator[tuple[RunningServer, FakeScheduler, FakeOutputs, FakeArtifacts]]:
    # The generated bases are abstract to mypy only; at run time they answer UNIMPLEMENTED for the rest.
    scheduler, outputs, artifacts = FakeScheduler(), FakeOutputs(), FakeArtifacts()  # type: ignore[abstract]
    server = await create_server(
        [
            ServiceBinding("s", scheduler, scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server),
            ServiceBinding("o", outputs, outputs_pb2_grpc.add_OutputServiceServicer_to_server),
            ServiceBinding("a", artifacts, artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server),
        ]
    )
    try:
        yield server, scheduler, outputs, artifacts
    finally:
        await server.drain(0)


@asynccontextmanager
async def admission_server(data_dir: Path, peers_address: str) -> AsyncIterator[tuple[AdmissionApp, str]]:
    conn = open_database(data_dir / "state.db")
    app = build(ServerConfig(data_dir=data_dir), conn, TOKENS)
    app.reconciler = HandOffReconciler(app.core, min_delay=0.05, max_delay=0.2)
    server = await create_server([app.binding])
    await app.start(ServiceAddresses.all_at(peers_address))
    try:
        yield app, server.address
    finally:
        await server.drain(0)
        await app.stop()
        conn.close()


def run(tmp_path: Path, test: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        async with peers_server() as (peers, scheduler, outputs, artifacts):
            async with admission_server(tmp_path, peers.address) as (app, address):
                channel = open_channel(address)
                try:
                    stub = admission_pb2_grpc.AdmissionServiceStub(channel)
                    await test(Harness(stub, scheduler, outputs, artifacts, app))
                finally:
                    await channel.close()

    asyncio.run(main())


async def expect_code(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def detail(error: grpc.aio.AioRpcError, kind: type[Any]) -> Any:
    status = rpc_status.from_call(error)
    assert status is not None
    message = kind()
    assert any(packed.Unpack(message) for packed in status.details)
    return message


async def submit_manifest(stub: admission_pb2_grpc.AdmissionServiceAsyncStub, **fields: Any) -> workflow_pb2.Workflow:
    response = await stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(manifest=MANIFEST, **fields), timeout=5)
    return response.workflow


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------- submit and lint


def test_submit_a_manifest_with_overrides_stores_and_hands_off(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        workflow = await submit_manifest(h.stub, parameters={"who": "treadle"}, labels={"run": "1"})
        name = workflow.metadata.name
        assert name.startswith("hello-") and len(name) == len("hello-") + 5
        assert workflow.metadata.uid and workflow.metadata.namespace == "default"
        assert dict(workflow.metadata.labels) == {"team": "a", "run": "1"}
        assert workflow.metadata.creation_timestamp.seconds > 0
        assert [(p.name, p.value) for p in workflow.spec.arguments.parameters] == [("who", "treadle")]
        assert h.scheduler.started[name].metadata.uid == workflow.metadata.uid
        assert h.scheduler.started[name].spec == workflow.spec
        got = await h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name=name), timeout=5)
        assert got.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING
        assert got.workflow.metadata.resource_version == "1"
        assert got.workflow.spec == workflow.spec

    run(tmp_path, test)


def test_submit_a_typed_workflow_with_entrypoint_and_generate_name(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        typed = typed_workflow("")
        typed.spec.templates.add(name="other", container=workflow_pb2.Container(image="alpine"))
        request = admission_pb2.SubmitWorkflowRequest(workflow=typed, entrypoint="other", generate_name="typed-")
        workflow = (await h.stub.SubmitWorkflow(request, timeout=5)).workflow
        assert workflow.metadata.name.startswith("typed-")
        assert workflow.spec.entrypoint == "other"
        assert workflow.metadata.name in h.scheduler.started

    run(tmp_path, test)


def test_invalid_input_is_rejected_with_the_field_and_nothing_is_stored(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        bad_template = MANIFEST.replace("entrypoint: main", "entrypoint: missing")
        error = await expect_code(
            h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(manifest=bad_template), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations] == ["spec.entrypoint"]

        error = await expect_code(
            h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(manifest="kind: [unclosed"), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations] == ["manifest"]

        error = await expect_code(
            h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(), timeout=5), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations] == ["source"]

        unnamed = typed_workflow("")
        error = await expect_code(
            h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(workflow=unnamed), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations] == ["metadata.name"]

        listed = await h.stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(), timeout=5)
        assert list(listed.workflows) == []
        assert h.scheduler.started == {}

    run(tmp_path, test)


def test_lint_validates_and_stores_nothing(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        linted = await h.stub.LintWorkflow(
            admission_pb2.LintWorkflowRequest(manifest=MANIFEST, parameters={"who": "x"}), timeout=5
        )
        assert linted.workflow.metadata.generate_name == "hello-"
        assert linted.workflow.spec.arguments.parameters[0].value == "x"
        error = await expect_code(
            h.stub.LintWorkflow(admission_pb2.LintWorkflowRequest(manifest=MANIFEST.replace("who}}", "nobody}}"))),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert detail(error, error_details_pb2.BadRequest).field_violations[0].field.startswith("spec.templates[0]")
        listed = await h.stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(), timeout=5)
        assert list(listed.workflows) == []

    run(tmp_path, test)


def test_a_retried_submit_with_the_same_request_id_returns_the_first_workflow(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        first = await submit_manifest(h.stub, request_id="req-1")
        again = await submit_manifest(h.stub, request_id="req-1")
        assert (again.metadata.name, again.metadata.uid) == (first.metadata.name, first.metadata.uid)
        other = await submit_manifest(h.stub, request_id="req-2")
        assert other.metadata.uid != first.metadata.uid
        listed = await h.stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(), timeout=5)
        assert len(listed.workflows) == 2

    run(tmp_path, test)


def test_a_taken_name_is_already_exists(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        request = admission_pb2.SubmitWorkflowRequest(workflow=typed_workflow("fixed"))
        await h.stub.SubmitWorkflow(request, timeout=5)
        error = await expect_code(h.stub.SubmitWorkflow(request, timeout=5), grpc.StatusCode.ALREADY_EXISTS)
        assert detail(error, error_details_pb2.ResourceInfo).resource_name == "fixed"

    run(tmp_path, test)


# ---------------------------------------------------------------------- reads


def test_get_of_an_unknown_workflow_is_not_found_with_resource_info(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        error = await expect_code(
            h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name="nope"), timeout=5), grpc.StatusCode.NOT_FOUND
        )
        info = detail(error, error_details_pb2.ResourceInfo)
        assert (info.resource_type, info.resource_name) == ("workflow", "nope")

    run(tmp_path, test)


def test_list_pages_newest_first(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        names = []
        for i in range(5):
            request = admission_pb2.SubmitWorkflowRequest(workflow=typed_workflow(f"wf-{i}"))
            names.append((await h.stub.SubmitWorkflow(request, timeout=5)).workflow.metadata.name)
        await h.scheduler.set_status(
            "wf-4",
            workflow_pb2.WorkflowStatus(
                phase=workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, nodes={"n": workflow_pb2.NodeStatus(id="n")}
            ),
        )
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await h.stub.ListWorkflows(
                admission_pb2.ListWorkflowsRequest(page_size=2, page_token=token), timeout=5
            )
            seen += [w.metadata.name for w in page.workflows]
            pages += 1
            if pages == 1:
                newest = page.workflows[0]
                assert newest.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED
                assert len(newest.status.nodes) == 0
                assert newest.spec.entrypoint == "main"
            token = page.next_page_token
            if not token:
                break
        assert seen == list(reversed(names))
        assert pages == 3
        await expect_code(
            h.stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(page_token="garbage"), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
        )

    run(tmp_path, test)


def test_watch_streams_until_the_workflow_is_final(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(workflow=typed_workflow("w")), timeout=5)
        call = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name="w"), timeout=10)
        first = await call.read()
        assert isinstance(first, admission_pb2.WatchWorkflowResponse)
        assert first.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING
        assert first.workflow.metadata.name == "w" and first.workflow.spec.entrypoint == "main"
        await h.scheduler.set_status("w", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_SUCCEEDED))
        last = await call.read()
        assert isinstance(last, admission_pb2.WatchWorkflowResponse)
        assert last.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_SUCCEEDED
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK

    run(tmp_path, test)


# ---------------------------------------------------------------------- the scheduler being down


def test_a_submit_while_the_scheduler_is_down_is_stored_and_handed_off_later(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.scheduler.down = True
        workflow = await submit_manifest(h.stub)
        name = workflow.metadata.name
        assert h.scheduler.started == {}
        got = await h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name=name), timeout=5)
        assert got.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_PENDING

        watch = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name=name), timeout=10)
        pending = await watch.read()
        assert isinstance(pending, admission_pb2.WatchWorkflowResponse)
        assert pending.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_PENDING

        h.scheduler.down = False
        await eventually(lambda: name in h.scheduler.started)
        assert h.scheduler.started[name].metadata.uid == workflow.metadata.uid
        running = await watch.read()
        assert isinstance(running, admission_pb2.WatchWorkflowResponse)
        assert running.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING
        watch.cancel()

    run(tmp_path, test)


def test_a_workflow_stored_before_a_restart_is_handed_off_after_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with peers_server() as (peers, scheduler, _, _):
            scheduler.down = True
            async with admission_server(tmp_path, peers.address) as (_, address):
                channel = open_channel(address)
                workflow = await submit_manifest(admission_pb2_grpc.AdmissionServiceStub(channel))
                await channel.close()
            scheduler.down = False
            assert scheduler.started == {}
            async with admission_server(tmp_path, peers.address):
                await eventually(lambda: workflow.metadata.name in scheduler.started)

    asyncio.run(main())


# ---------------------------------------------------------------------- delete and logs


def test_delete_stops_forgets_and_is_idempotent_with_a_request_id(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(workflow=typed_workflow("d")), timeout=5)
        await h.stub.DeleteWorkflow(admission_pb2.DeleteWorkflowRequest(name="d", request_id="del-1"), timeout=5)
        assert h.scheduler.deleted == ["d"] and h.outputs.deleted == ["d"]
        await expect_code(
            h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name="d"), timeout=5), grpc.StatusCode.NOT_FOUND
        )
        await h.stub.DeleteWorkflow(admission_pb2.DeleteWorkflowRequest(name="d", request_id="del-1"), timeout=5)
        for retry in (
            admission_pb2.DeleteWorkflowRequest(name="d"),
            admission_pb2.DeleteWorkflowRequest(name="d", request_id="del-2"),
        ):
            await expect_code(h.stub.DeleteWorkflow(retry, timeout=5), grpc.StatusCode.NOT_FOUND)
        assert h.scheduler.deleted == ["d"]

    run(tmp_path, test)


def test_delete_fails_unavailable_and_keeps_the_workflow_while_the_scheduler_is_down(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(workflow=typed_workflow("d")), timeout=5)
        h.scheduler.down = True
        await expect_code(
            h.stub.DeleteWorkflow(admission_pb2.DeleteWorkflowRequest(name="d"), timeout=5), grpc.StatusCode.UNAVAILABLE
        )
        h.scheduler.down = False
        await h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name="d"), timeout=5)

    run(tmp_path, test)


def pod(node_id: str, display_name: str, started: int) -> workflow_pb2.NodeStatus:
    node = workflow_pb2.NodeStatus(id=node_id, name=f"logs.{display_name}", display_name=display_name)
    node.type = workflow_pb2.NODE_TYPE_POD
    node.started_at.seconds = started
    return node


def test_logs_stream_each_pod_nodes_saved_log_line_by_line(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(workflow=typed_workflow("logs")), timeout=5)
        dag = workflow_pb2.NodeStatus(id="logs", name="logs", display_name="logs", children=["a", "b", "c"])
        dag.type = workflow_pb2.NODE_TYPE_DAG
        nodes = {"logs": dag, "a": pod("a", "first", 1), "b": pod("b", "second", 2), "c": pod("c", "unreported", 3)}
        await h.scheduler.set_status(
            "logs", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_RUNNING, nodes=nodes)
        )
        for node_id, text in (("a", "one\ntwo, which is longer\n"), ("b", "three\nno newline")):
            key = f"logs/{node_id}/main.log"
            h.artifacts.objects[key] = text.encode()
            h.outputs.reports[("logs", node_id)] = outputs_pb2.ReportStepOutputsRequest(
                workflow="logs", node_id=node_id, log=workflow_pb2.StoredArtifact(key=key, archive="none")
            )

        every = h.stub.WorkflowLogs(admission_pb2.WorkflowLogsRequest(name="logs"), timeout=5)
        lines = [(line.node_id, line.node_name, line.content) async for line in every]
        assert lines == [
            ("a", "first", "one"),
            ("a", "first", "two, which is longer"),
            ("b", "second", "three"),
            ("b", "second", "no newline"),
        ]
        one = h.stub.WorkflowLogs(admission_pb2.WorkflowLogsRequest(name="logs", node="second"), timeout=5)
        assert [line.content async for line in one] == ["three", "no newline"]
        unknown = h.stub.WorkflowLogs(admission_pb2.WorkflowLogsRequest(name="logs", node="nope"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [line async for line in unknown]
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    run(tmp_path, test)


# ---------------------------------------------------------------------- list filters


async def submit_named(h: Harness, name: str, labels: dict[str, str] | None = None) -> None:
    workflow = typed_workflow(name)
    workflow.metadata.labels.update(labels or {})
    await h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(workflow=workflow), timeout=5)


async def list_all(h: Harness, **filters: Any) -> tuple[list[str], int]:
    """Every name a filtered listing returns, following tokens; and how many pages it took."""
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        request = admission_pb2.ListWorkflowsRequest(page_token=token, **filters)
        page = await h.stub.ListWorkflows(request, timeout=5)
        names += [w.metadata.name for w in page.workflows]
        pages += 1
        token = page.next_page_token
        if not token:
            return names, pages


def test_list_filters_by_label_selector_phase_and_name_prefix(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "build-1", {"team": "a", "env": "dev"})
        await submit_named(h, "build-2", {"team": "a", "env": "prod"})
        await submit_named(h, "test-1", {"team": "b", "canary": "yes"})
        await submit_named(h, "test-2", {})
        await h.scheduler.set_status("build-2", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_FAILED))
        await h.scheduler.set_status("test-2", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_SUCCEEDED))

        async def names(**filters: Any) -> list[str]:
            return (await list_all(h, **filters))[0]

        assert await names(label_selector="team=a") == ["build-2", "build-1"]
        assert await names(label_selector="team==a,env!=prod") == ["build-1"]
        assert await names(label_selector="team!=a") == ["test-2", "test-1"]  # != also matches a missing label
        assert await names(label_selector="env in (dev, qa)") == ["build-1"]
        assert await names(label_selector="env notin (dev)") == ["test-2", "test-1", "build-2"]
        assert await names(label_selector="canary") == ["test-1"]
        assert await names(label_selector="!canary,!env") == ["test-2"]
        assert await names(name_prefix="test-") == ["test-2", "test-1"]
        running = workflow_pb2.WORKFLOW_PHASE_RUNNING
        assert await names(phases=[running]) == ["test-1", "build-1"]
        finished = [workflow_pb2.WORKFLOW_PHASE_SUCCEEDED, workflow_pb2.WORKFLOW_PHASE_FAILED]
        assert await names(phases=finished) == ["test-2", "build-2"]
        assert await names(phases=finished, name_prefix="build", label_selector="team=a") == ["build-2"]

    run(tmp_path, test)


def test_list_shows_workflows_the_scheduler_has_not_taken_as_pending(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "taken")
        h.scheduler.down = True
        await submit_named(h, "waiting")
        await h.app.reconciler.stop()  # so that "waiting" stays with admission
        h.scheduler.down = False
        pending = await list_all(h, phases=[workflow_pb2.WORKFLOW_PHASE_PENDING])
        assert pending == (["waiting"], 1)

    run(tmp_path, test)


def test_a_filtered_listing_never_skips_a_match_across_short_pages(tmp_path: Path, monkeypatch: Any) -> None:
    from treadle.services.admission import listing

    # Examine at most 4 records a call, so that a selective filter spreads over many short pages.
    monkeypatch.setattr(listing, "SCAN_LIMIT", 4)
    monkeypatch.setattr(listing, "MIN_SCAN_BATCH", 2)

    async def test(h: Harness) -> None:
        expected = []
        for i in range(23):
            matches = i % 5 == 0
            await submit_named(h, f"wf-{i:02d}", {"keep": "yes"} if matches else {})
            if matches:
                expected.append(f"wf-{i:02d}")
        names, pages = await list_all(h, label_selector="keep=yes", page_size=2)
        assert names == list(reversed(expected))
        assert pages > 3  # the scan limit, not the page size, ended most pages
        every, _ = await list_all(h, page_size=3)
        assert len(every) == 23 == len(set(every))

    run(tmp_path, test)


def test_list_rejects_bad_filters_naming_each_field(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        request = admission_pb2.ListWorkflowsRequest(label_selector="team in a", phases=[0, 42], page_size=-1)
        error = await expect_code(h.stub.ListWorkflows(request, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
        fields = [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations]
        assert fields == ["page_size", "phases[0]", "phases[1]", "label_selector"]

        for selector in ("a=b,,c", "a=(b)", "in (x", "a b", "x in ()"):
            error = await expect_code(
                h.stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(label_selector=selector), timeout=5),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            assert detail(error, error_details_pb2.BadRequest).field_violations[0].field == "label_selector"

    run(tmp_path, test)


def test_a_page_token_is_valid_only_with_the_filters_it_was_issued_for(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        for i in range(3):
            await submit_named(h, f"wf-{i}", {"team": "a"})
        first = await h.stub.ListWorkflows(
            admission_pb2.ListWorkflowsRequest(page_size=1, label_selector="team=a"), timeout=5
        )
        token = first.next_page_token
        assert token
        same = admission_pb2.ListWorkflowsRequest(page_size=2, label_selector="team=a", page_token=token)
        assert [w.metadata.name for w in (await h.stub.ListWorkflows(same, timeout=5)).workflows] == ["wf-1", "wf-0"]
        other = admission_pb2.ListWorkflowsRequest(page_size=1, label_selector="team=b", page_token=token)
        error = await expect_code(h.stub.ListWorkflows(other, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
        violation = detail(error, error_details_pb2.BadRequest).field_violations[0]
        assert violation.field == "page_token" and "other filters" in violation.description

    run(tmp_path, test)


# ---------------------------------------------------------------------- resource versions and resumed watches


def test_every_returned_workflow_carries_a_resource_version(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        submitted = await submit_manifest(h.stub)
        name = submitted.metadata.name
        assert submitted.metadata.resource_version == "0"
        assert submitted.status.phase == workflow_pb2.WORKFLOW_PHASE_PENDING
        got = await h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name=name), timeout=5)
        assert got.workflow.metadata.resource_version == "1"
        linted = await h.stub.LintWorkflow(admission_pb2.LintWorkflowRequest(manifest=MANIFEST), timeout=5)
        assert linted.workflow.metadata.resource_version == ""  # not stored: no version
        h.scheduler.down = True
        waiting = await submit_manifest(h.stub)
        await h.app.reconciler.stop()
        h.scheduler.down = False
        await h.scheduler.set_status(name, workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_SUCCEEDED))
        listed = await h.stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(), timeout=5)
        versions = {w.metadata.name: w.metadata.resource_version for w in listed.workflows}
        assert versions == {name: "2", waiting.metadata.name: "0"}

    run(tmp_path, test)


async def read_event(call: Any) -> workflow_pb2.Workflow:
    event = await call.read()
    assert isinstance(event, admission_pb2.WatchWorkflowResponse), event
    return event.workflow


def test_a_resumed_watch_sends_only_newer_states_and_never_repeats_one(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        first = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name="w"), timeout=10)
        assert (await read_event(first)).metadata.resource_version == "1"
        await h.scheduler.set_status("w", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_RUNNING))
        seen = await read_event(first)
        assert seen.metadata.resource_version == "2"
        first.cancel()  # the connection drops

        # Changes while the client is away are folded into the first event of the resumed watch.
        for _ in range(2):
            await h.scheduler.set_status("w", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_RUNNING))
        resumed = h.stub.WatchWorkflow(
            admission_pb2.WatchWorkflowRequest(name="w", resource_version=seen.metadata.resource_version), timeout=10
        )
        assert (await read_event(resumed)).metadata.resource_version == "4"
        await h.scheduler.set_status("w", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_SUCCEEDED))
        last = await read_event(resumed)
        assert (last.metadata.resource_version, last.status.phase) == ("5", workflow_pb2.WORKFLOW_PHASE_SUCCEEDED)
        assert await resumed.read() is grpc.aio.EOF

        # Resuming at the final version sends nothing and ends: the client has seen it all.
        done = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name="w", resource_version="5"), timeout=10)
        assert await done.read() is grpc.aio.EOF
        assert await done.code() == grpc.StatusCode.OK

    run(tmp_path, test)


def test_a_watch_resumed_from_the_admitted_version_skips_only_the_pending_state(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.scheduler.down = True
        submitted = await submit_manifest(h.stub)
        name = submitted.metadata.name
        watch = h.stub.WatchWorkflow(
            admission_pb2.WatchWorkflowRequest(name=name, resource_version=submitted.metadata.resource_version),
            timeout=10,
        )
        h.scheduler.down = False
        event = await read_event(watch)
        assert (event.metadata.resource_version, event.status.phase) == ("1", workflow_pb2.WORKFLOW_PHASE_RUNNING)
        watch.cancel()

    run(tmp_path, test)


def test_watch_rejects_a_resource_version_that_is_not_one(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        call = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name="w", resource_version="abc"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert detail(caught.value, error_details_pb2.BadRequest).field_violations[0].field == "resource_version"

    run(tmp_path, test)


def test_draining_ends_open_watches_with_unavailable_and_where_to_resume(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        watch = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name="w"), timeout=10)
        assert (await read_event(watch)).metadata.resource_version == "1"
        h.app.begin_drain()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await watch.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "resource_version=1" in (caught.value.details() or "")

    run(tmp_path, test)


def test_draining_ends_log_follows_too(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")  # running, and it stays so
        follow = h.stub.WorkflowLogs(admission_pb2.WorkflowLogsRequest(name="w", follow=True), timeout=10)
        await asyncio.sleep(0.3)
        h.app.begin_drain()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await follow.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in (caught.value.details() or "")

    run(tmp_path, test)


# ---------------------------------------------------------------------- lifecycle calls


def test_lifecycle_calls_reach_the_scheduler_and_return_the_workflow_with_its_version(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        stub = h.stub
        suspended = await stub.SuspendWorkflow(admission_pb2.SuspendWorkflowRequest(name="w"), timeout=5)
        assert suspended.workflow.metadata.name == "w" and suspended.workflow.metadata.resource_version == "2"
        await stub.ResumeWorkflow(admission_pb2.ResumeWorkflowRequest(name="w", node="approve"), timeout=5)
        await stub.SetWorkflowNode(
            admission_pb2.SetWorkflowNodeRequest(
                name="w", node="approve", output_parameters={"ok": "yes"}, phase=workflow_pb2.NODE_PHASE_SUCCEEDED
            ),
            timeout=5,
        )
        stopped = await stub.StopWorkflow(admission_pb2.StopWorkflowRequest(name="w", message="enough"), timeout=5)
        assert stopped.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_FAILED
        retried = await stub.RetryWorkflow(admission_pb2.RetryWorkflowRequest(name="w"), timeout=5)
        assert retried.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING
        await stub.TerminateWorkflow(admission_pb2.TerminateWorkflowRequest(name="w", message="bye"), timeout=5)
        assert [verb for verb, _ in h.scheduler.controls] == [
            "suspend",
            "resume:approve",
            f"set:approve:ok=yes:{workflow_pb2.NODE_PHASE_SUCCEEDED}",
            "stop:enough",
            "retry",
            "terminate:bye",
        ]

    run(tmp_path, test)


def test_a_retried_lifecycle_call_with_its_request_id_takes_effect_once(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        await h.scheduler.set_status("w", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_FAILED))
        request = admission_pb2.RetryWorkflowRequest(name="w", request_id="retry-1")
        first = await h.stub.RetryWorkflow(request, timeout=5)
        again = await h.stub.RetryWorkflow(request, timeout=5)
        assert h.scheduler.controls == [("retry", "w")]
        assert again.workflow.metadata.resource_version == first.workflow.metadata.resource_version

        reused = admission_pb2.SuspendWorkflowRequest(name="w", request_id="retry-1")
        error = await expect_code(h.stub.SuspendWorkflow(reused, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
        assert detail(error, error_details_pb2.BadRequest).field_violations[0].field == "request_id"

    run(tmp_path, test)


def test_a_failed_lifecycle_call_keeps_its_request_id_free_for_a_retry(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        h.scheduler.down = True
        request = admission_pb2.SuspendWorkflowRequest(name="w", request_id="s-1")
        await expect_code(h.stub.SuspendWorkflow(request, timeout=5), grpc.StatusCode.UNAVAILABLE)
        h.scheduler.down = False
        await h.stub.SuspendWorkflow(request, timeout=5)
        assert h.scheduler.controls == [("suspend", "w")]

    run(tmp_path, test)


def test_resuming_a_finished_workflow_is_failed_precondition_with_the_violation(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        await submit_named(h, "w")
        await h.scheduler.set_status("w", workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_SUCCEEDED))
        error = await expect_code(
            h.stub.ResumeWorkflow(admission_pb2.ResumeWorkflowRequest(name="w"), timeout=5),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        violation = detail(error, error_details_pb2.PreconditionFailure).violations[0]
        assert violation.subject == "workflows/w" and "finished" in violation.description
        await expect_code(
            h.stub.SuspendWorkflow(admission_pb2.SuspendWorkflowRequest(name="nope"), timeout=5),
            grpc.StatusCode.NOT_FOUND,
        )

    run(tmp_path, test)


def test_a_lifecycle_call_before_the_hand_off_is_unavailable(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.scheduler.down = True
        submitted = await submit_manifest(h.stub)
        request = admission_pb2.StopWorkflowRequest(name=submitted.metadata.name)
        error = await expect_code(h.stub.StopWorkflow(request, timeout=5), grpc.StatusCode.UNAVAILABLE)
        assert "not with the scheduler yet" in (error.details() or "")

    run(tmp_path, test)


def test_resubmit_copies_the_spec_under_a_new_name_once_per_request_id(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        original = await submit_manifest(h.stub, parameters={"who": "first"})
        name = original.metadata.name
        request = admission_pb2.ResubmitWorkflowRequest(name=name, parameters={"who": "again"}, request_id="re-1")
        copy = (await h.stub.ResubmitWorkflow(request, timeout=5)).workflow
        assert copy.metadata.name.startswith(f"{name}-") and copy.metadata.uid != original.metadata.uid
        assert copy.metadata.labels["workflows.argoproj.io/resubmitted-from-workflow"] == name
        assert copy.metadata.labels["team"] == "a"
        assert [(p.name, p.value) for p in copy.spec.arguments.parameters] == [("who", "again")]
        assert copy.metadata.name in h.scheduler.started
        again = (await h.stub.ResubmitWorkflow(request, timeout=5)).workflow
        assert again.metadata.uid == copy.metadata.uid
        await expect_code(
            h.stub.ResubmitWorkflow(admission_pb2.ResubmitWorkflowRequest(name="nope"), timeout=5),
            grpc.StatusCode.NOT_FOUND,
        )

    run(tmp_path, test)


# ---------------------------------------------------------------------- unexpected failures


def test_an_unexpected_failure_is_internal_and_reveals_nothing(tmp_path: Path, caplog: Any) -> None:
    async def test(h: Harness) -> None:
        def explode(name: str) -> Any:
            raise RuntimeError("secret database path /var/lib/x")

        h.app.core.repository.get = explode  # type: ignore[method-assign]
        error = await expect_code(
            h.stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name="w"), timeout=5), grpc.StatusCode.INTERNAL
        )
        assert "secret" not in (error.details() or "")
        assert rpc_status.from_call(error) is not None  # still a google.rpc.Status
        watch = h.stub.WatchWorkflow(admission_pb2.WatchWorkflowRequest(name="w"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await watch.read()
        assert caught.value.code() == grpc.StatusCode.INTERNAL

    run(tmp_path, test)
    assert "secret database path" in caplog.text  # the log keeps the traceback


# ---------------------------------------------------------------------- durability (group commit)


def test_a_submit_answers_only_once_its_record_is_fsynced(tmp_path: Path) -> None:
    """The insert's commit skips its own fsync; a scheduler in another process gets the workflow only
    once the record is on disk (a power loss must not leave it a workflow admission forgot), and the
    call answers after that."""
    release = threading.Event()
    synced: list[int] = []

    def slow_fsync(fd: int) -> None:
        release.wait(5)
        os.fdatasync(fd)
        synced.append(fd)

    async def test(h: Harness) -> None:
        repository = h.app.core.repository
        assert repository.group.enabled
        repository.group._fsync = slow_fsync
        call = asyncio.ensure_future(h.stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(manifest=MANIFEST)))
        await eventually(lambda: len(repository.page(10)) == 1)
        name = repository.page(10)[0].name  # stored, not yet durable
        await asyncio.sleep(0.2)
        assert not call.done() and not synced and not h.scheduler.started
        release.set()
        response = await call
        assert response.workflow.metadata.name == name and synced and name in h.scheduler.started

    run(tmp_path, test)


def test_concurrent_submits_share_fdatasyncs_and_marks(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        group = h.app.core.repository.group
        before = group.syncs
        await asyncio.gather(*(submit_manifest(h.stub) for _ in range(40)))
        assert len(h.scheduler.started) == 40
        assert 1 <= group.syncs - before < 40
        records = h.app.core.repository.page(100)
        assert len(records) == 40 and all(record.handed_off for record in records)

    run(tmp_path, test)


def test_all_in_one_the_hand_off_is_in_process_and_durable_before_the_answer(tmp_path: Path) -> None:
    from treadle.config import ServerConfig, ServiceAddresses
    from treadle.grpcutil.inprocess import InProcessContext
    from treadle.services.scheduler.service import SchedulerServicer
    from treadle.services.server import start_stack

    contexts: list[str] = []
    start = SchedulerServicer.StartWorkflow

    async def noting(self: SchedulerServicer, request: Any, context: Any) -> Any:
        contexts.append(type(context).__name__)
        return await start(self, request, context)

    async def main() -> None:
        stack = await start_stack(ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0", addresses=ServiceAddresses()))
        channel = open_channel(stack.address)
        try:
            stub = admission_pb2_grpc.AdmissionServiceStub(channel)
            group = stack.apps["admission"].core.repository.group  # type: ignore[attr-defined]
            held = MANIFEST.replace("spec:\n", "spec:\n  suspend: true\n", 1)
            request = admission_pb2.SubmitWorkflowRequest(manifest=held)
            responses = await asyncio.gather(*(stub.SubmitWorkflow(request, timeout=10) for _ in range(10)))
            workflows = [response.workflow for response in responses]
            # The scheduler's fdatasync covers admission's insert too: at most one per submission.
            assert 1 <= group.syncs <= 10
            for workflow in workflows:
                got = await stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name=workflow.metadata.name), timeout=5)
                assert got.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING
        finally:
            await channel.close()
            await stack.stop(grace=0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SchedulerServicer, "StartWorkflow", noting)
        asyncio.run(main())
    assert contexts == [InProcessContext.__name__] * 10
