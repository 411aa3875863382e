"""TreadleClient over real gRPC against a fake AdmissionService.

The fake keeps workflows in a dict and plays a scripted watch, so the client's
request shapes, paging, error mapping, deadlines and reconnects are checked
without the rest of treadle.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from treadle import errors
from treadle.admission.v1 import admission_pb2 as adm
from treadle.admission.v1 import admission_pb2_grpc as adm_grpc
from treadle.client import SyncTreadleClient, TreadleClient, is_final
from treadle.grpcutil.server import ServiceBinding, create_server
from treadle.grpcutil.status import grpc_errors
from treadle.spec.convert import workflow_from_dict
from treadle.spec.manifest import load_manifest
from treadle.workflow.v1 import workflow_pb2 as wf_pb

Context = grpc.aio.ServicerContext[Any, Any]
MANIFEST = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: fake-}
spec:
  entrypoint: main
  templates: [{name: main, container: {image: busybox, command: [echo, hi]}}]
"""
PHASES = (wf_pb.WORKFLOW_PHASE_PENDING, wf_pb.WORKFLOW_PHASE_RUNNING, wf_pb.WORKFLOW_PHASE_SUCCEEDED)


class FakeAdmission(adm_grpc.AdmissionServiceServicer):
    def __init__(self) -> None:
        self.workflows: dict[str, wf_pb.Workflow] = {}
        self.requests: list[Any] = []
        self.watch_failures = 0  # how many watches to break with UNAVAILABLE before serving one
        self.watch_unreachable = False  # break every watch before it says anything
        self.deadlines: dict[str, float | None] = {}

    def _note(self, method: str, request: Any, context: Context) -> None:
        self.requests.append(request)
        self.deadlines[method] = context.time_remaining()

    @grpc_errors
    async def SubmitWorkflow(self, request: adm.SubmitWorkflowRequest, context: Context) -> adm.SubmitWorkflowResponse:
        self._note("submit", request, context)
        if request.WhichOneof("source") == "manifest":
            workflow = workflow_from_dict(load_manifest(request.manifest))
        else:
            workflow = request.workflow
        workflow.metadata.name = workflow.metadata.name or f"{workflow.metadata.generate_name}{len(self.workflows)}"
        workflow.status.phase = wf_pb.WORKFLOW_PHASE_PENDING
        self.workflows[workflow.metadata.name] = workflow
        return adm.SubmitWorkflowResponse(workflow=workflow)

    @grpc_errors
    async def LintWorkflow(self, request: adm.LintWorkflowRequest, context: Context) -> adm.LintWorkflowResponse:
        self._note("lint", request, context)
        return adm.LintWorkflowResponse(workflow=workflow_from_dict(load_manifest(request.manifest)))

    @grpc_errors
    async def GetWorkflow(self, request: adm.GetWorkflowRequest, context: Context) -> adm.GetWorkflowResponse:
        self._note("get", request, context)
        return adm.GetWorkflowResponse(workflow=self._find(request.name))

    @grpc_errors
    async def ListWorkflows(self, request: adm.ListWorkflowsRequest, context: Context) -> adm.ListWorkflowsResponse:
        self._note("list", request, context)
        names = sorted(self.workflows)
        start = int(request.page_token or 0)
        end = start + (request.page_size or 100)
        page = [self.workflows[n] for n in names[start:end]]
        return adm.ListWorkflowsResponse(workflows=page, next_page_token=str(end) if end < len(names) else "")

    @grpc_errors
    async def WatchWorkflow(
        self, request: adm.WatchWorkflowRequest, context: Context
    ) -> AsyncIterator[adm.WatchWorkflowResponse]:
        self._note("watch", request, context)
        workflow = self._find(request.name)
        if self.watch_unreachable:
            raise errors.Unavailable("gone")
        if self.watch_failures:
            self.watch_failures -= 1
            yield adm.WatchWorkflowResponse(workflow=workflow)
            raise errors.Unavailable("restarting")
        for phase in PHASES:
            workflow.status.phase = phase
            yield adm.WatchWorkflowResponse(workflow=workflow)

    @grpc_errors
    async def DeleteWorkflow(self, request: adm.DeleteWorkflowRequest, context: Context) -> adm.DeleteWorkflowResponse:
        self._note("delete", request, context)
        self._find(request.name)
        del self.workflows[request.name]
        return adm.DeleteWorkflowResponse()

    @grpc_errors
    async def WorkflowLogs(
        self, request: adm.WorkflowLogsRequest, context: Context
    ) -> AsyncIterator[adm.WorkflowLogsResponse]:
        self._note("logs", request, context)
        self._find(request.name)
        for i in range(3):
            yield adm.WorkflowLogsResponse(node_id="n1", node_name="step-a", content=f"line {i}")

    def _find(self, name: str) -> wf_pb.Workflow:
        if name not in self.workflows:
            raise errors.NotFound("workflow", name)
        return self.workflows[name]


def with_server(test: Callable[[TreadleClient, FakeAdmission], Awaitable[None]]) -> None:
    async def main() -> None:
        fake = FakeAdmission()
        binding = ServiceBinding(
            "treadle.admission.v1.AdmissionService", fake, adm_grpc.add_AdmissionServiceServicer_to_server
        )
        server = await create_server([binding])
        try:
            async with TreadleClient(server.address, timeout=5.0) as client:
                await test(client, fake)
        finally:
            await server.drain(0)

    asyncio.run(main())


def test_submit_sends_the_manifest_and_a_fresh_request_id() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        first = await client.submit(MANIFEST, parameters={"a": "1"}, entrypoint="main", labels={"team": "x"})
        await client.submit(MANIFEST, request_id="mine")
        assert first.metadata.name == "fake-0"
        one, two = fake.requests
        assert one.manifest == MANIFEST and dict(one.parameters) == {"a": "1"} and one.entrypoint == "main"
        assert dict(one.labels) == {"team": "x"}
        assert len(one.request_id) == 36 and two.request_id == "mine"
        assert fake.deadlines["submit"] is not None and 0 < fake.deadlines["submit"] <= 5.5

    with_server(check)


def test_submit_accepts_a_typed_workflow() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        typed = workflow_from_dict(load_manifest(MANIFEST))
        typed.metadata.name = "typed"
        stored = await client.submit(typed)
        assert stored.metadata.name == "typed"
        assert fake.requests[0].WhichOneof("source") == "workflow"

    with_server(check)


def test_invalid_manifests_raise_invalid_spec_with_fields() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        with pytest.raises(errors.InvalidSpec) as exc:
            await client.submit(MANIFEST.replace("kind: Workflow", "kind: Loom"))
        assert [v.field for v in exc.value.violations] == ["kind"]
        with pytest.raises(errors.InvalidSpec):
            await client.lint("")
        assert fake.workflows == {}

    with_server(check)


def test_get_and_delete_raise_not_found() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        with pytest.raises(errors.NotFound, match="'ghost'"):
            await client.get("ghost")
        name = (await client.submit(MANIFEST)).metadata.name
        assert (await client.get(name)).metadata.name == name
        await client.delete(name)
        with pytest.raises(errors.NotFound):
            await client.delete(name)

    with_server(check)


def test_list_follows_page_tokens() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        for _ in range(5):
            await client.submit(MANIFEST)
        names = [wf.metadata.name async for wf in client.list(page_size=2)]
        assert names == [f"fake-{i}" for i in range(5)]
        assert [r.page_token for r in fake.requests if isinstance(r, adm.ListWorkflowsRequest)] == ["", "2", "4"]

    with_server(check)


def test_wait_returns_the_final_state_and_reports_every_update() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        name = (await client.submit(MANIFEST)).metadata.name
        seen: list[int] = []
        final = await client.wait(name, on_update=lambda wf: seen.append(wf.status.phase))
        assert is_final(final) and final.status.phase == wf_pb.WORKFLOW_PHASE_SUCCEEDED
        assert seen == list(PHASES)
        assert fake.deadlines["watch"] is None  # a watch lasts as long as the workflow

    with_server(check)


def test_wait_reopens_a_watch_the_server_broke() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        name = (await client.submit(MANIFEST)).metadata.name
        fake.watch_failures = 2
        final = await client.wait(name, timeout=10)
        assert final.status.phase == wf_pb.WORKFLOW_PHASE_SUCCEEDED
        assert sum(isinstance(r, adm.WatchWorkflowRequest) for r in fake.requests) == 3

    with_server(check)


def test_wait_gives_up_when_the_server_stays_away() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        name = (await client.submit(MANIFEST)).metadata.name
        fake.watch_unreachable = True
        with pytest.raises(errors.Unavailable):
            await client.wait(name, reconnect_window=0.3)
        assert sum(isinstance(r, adm.WatchWorkflowRequest) for r in fake.requests) in (3, 4)

    with_server(check)


def test_logs_stream_lines_with_a_deadline() -> None:
    async def check(client: TreadleClient, fake: FakeAdmission) -> None:
        name = (await client.submit(MANIFEST)).metadata.name
        lines = [line async for line in client.logs(name, node="step-a")]
        assert [(line.node_name, line.content) for line in lines] == [("step-a", f"line {i}") for i in range(3)]
        assert fake.requests[-1].node == "step-a"
        assert fake.deadlines["logs"] is not None
        with pytest.raises(errors.NotFound):
            [line async for line in client.logs("ghost")]

    with_server(check)


def test_an_unreachable_server_raises_unavailable() -> None:
    async def check() -> None:
        async with TreadleClient("127.0.0.1:1", timeout=2.0) as client:
            with pytest.raises(errors.Unavailable):
                await client.get("x")

    asyncio.run(check())


def test_sync_facade() -> None:
    """The facade runs its own loop; the fake server runs in another thread's loop."""
    address: list[str] = []
    ready = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        async def main() -> None:
            fake = FakeAdmission()
            binding = ServiceBinding(
                "treadle.admission.v1.AdmissionService", fake, adm_grpc.add_AdmissionServiceServicer_to_server
            )
            server = await create_server([binding])
            address.append(server.address)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)
            await server.drain(0)

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10)
        with SyncTreadleClient(address[0]) as client:
            name = client.submit(MANIFEST).metadata.name
            assert [wf.metadata.name for wf in client.list()] == [name]
            assert [wf.status.phase for wf in client.watch(name)] == list(PHASES)
            assert [line.content for line in client.logs(name)] == ["line 0", "line 1", "line 2"]
            assert client.wait(name).status.phase == wf_pb.WORKFLOW_PHASE_SUCCEEDED
            client.delete(name)
            with pytest.raises(errors.NotFound):
                client.get(name)
    finally:
        stop.set()
        thread.join(10)
