"""gRPC implementations of the peers the admission core talks to. Every call carries a deadline."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc

from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.errors import DataLoss
from treadle.grpcutil import inprocess
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import error_from_rpc
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from treadle.services.admission.peers import Control, StatusSnapshot, Verb
from treadle.services.artifacts.gc_client import run_artifact_gc
from treadle.services.artifacts.gc_plan import GcPlan
from treadle.spec.convert import spec_to_dict
from treadle.templates.v1 import templates_pb2, templates_pb2_grpc
from treadle.workflow.v1 import workflow_pb2

# A watch is reopened after this long, so it has a deadline yet may last as long as the workflow.
WATCH_SEGMENT_SECONDS = 300.0
# Deadline of one log download.
DOWNLOAD_TIMEOUT = 300.0
# One FollowStepLog call; a follower resumes with a new call (from the next line) when it runs out.
FOLLOW_TIMEOUT = 300.0
LATEST_ATTEMPT = -1
SCHEDULER_SERVICE = scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name
# The hand-off goes straight to the scheduler's servicer when this process hosts it (treadle.grpcutil.inprocess).
IN_PROCESS_METHODS = frozenset({"StartWorkflow"})


class GrpcScheduler:
    def __init__(self, channel: grpc.aio.Channel, address: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        remote = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        stub: scheduler_pb2_grpc.SchedulerServiceAsyncStub = inprocess.stub(
            address, SCHEDULER_SERVICE, remote, IN_PROCESS_METHODS
        )
        self._stub = stub
        self._timeout = timeout
        # The scheduler runs in this process, on the same database: what it commits during the hand-off
        # lands in the same write-ahead log after admission's insert, so its sync covers that insert.
        self.co_hosted = self._stub is not remote

    async def start_workflow(self, workflow: workflow_pb2.Workflow) -> None:
        try:
            await self._stub.StartWorkflow(scheduler_pb2.StartWorkflowRequest(workflow=workflow), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    async def get_status(self, name: str, *, omit_nodes: bool = False) -> StatusSnapshot:
        try:
            response = await self._stub.GetWorkflowStatus(
                scheduler_pb2.GetWorkflowStatusRequest(name=name, omit_nodes=omit_nodes), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return StatusSnapshot(response.status, response.resource_version)

    async def batch_status(self, names: list[str]) -> dict[str, StatusSnapshot]:
        try:
            response = await self._stub.BatchGetWorkflowStatus(
                scheduler_pb2.BatchGetWorkflowStatusRequest(names=names), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return {name: StatusSnapshot(status, None) for name, status in response.statuses.items()}

    async def watch(self, name: str, after_version: int = -1) -> AsyncIterator[StatusSnapshot]:
        """Reopens the scheduler's watch whenever a segment's deadline passes, skipping what was seen."""
        seen_version = after_version
        while True:
            call = self._stub.WatchWorkflowStatus(
                scheduler_pb2.WatchWorkflowStatusRequest(name=name), timeout=WATCH_SEGMENT_SECONDS
            )
            try:
                async for event in call:
                    if event.resource_version > seen_version:
                        seen_version = event.resource_version
                        yield StatusSnapshot(event.status, event.resource_version)
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise error_from_rpc(exc) from None
            finally:
                call.cancel()

    async def delete(self, name: str) -> None:
        try:
            await self._stub.DeleteWorkflow(scheduler_pb2.DeleteWorkflowRequest(name=name), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    async def control(self, name: str, control: Control) -> None:
        try:
            await self._control_call(name, control)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    def _control_call(self, name: str, control: Control) -> Awaitable[object]:
        pb, stub, timeout = scheduler_pb2, self._stub, self._timeout
        match control.verb:
            case Verb.SUSPEND:
                return stub.SuspendWorkflow(pb.SuspendWorkflowRequest(name=name), timeout=timeout)
            case Verb.RESUME:
                return stub.ResumeWorkflow(pb.ResumeWorkflowRequest(name=name, node=control.node), timeout=timeout)
            case Verb.STOP:
                return stub.StopWorkflow(pb.StopWorkflowRequest(name=name, message=control.message), timeout=timeout)
            case Verb.TERMINATE:
                request = pb.TerminateWorkflowRequest(name=name, message=control.message)
                return stub.TerminateWorkflow(request, timeout=timeout)
            case Verb.SET_NODE:
                set_node = pb.SetWorkflowNodeRequest(
                    name=name,
                    node=control.node,
                    output_parameters=dict(control.output_parameters),
                    phase=control.phase,
                    message=control.message,
                )
                return stub.SetWorkflowNode(set_node, timeout=timeout)
            case Verb.RETRY:
                return stub.RetryWorkflow(pb.RetryWorkflowRequest(name=name), timeout=timeout)


class GrpcOutputs:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = outputs_pb2_grpc.OutputServiceStub(channel)
        self._timeout = timeout

    async def get_report(self, workflow: str, node_id: str) -> outputs_pb2.ReportStepOutputsRequest:
        request = outputs_pb2.GetStepOutputsRequest(workflow=workflow, node_id=node_id, attempt=LATEST_ATTEMPT)
        try:
            response = await self._stub.GetStepOutputs(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return response.report

    async def follow_log(self, workflow: str, node_id: str, from_line: int) -> AsyncIterator[list[str]]:
        """A running step's live lines in batches (follow.py); one call lasts at most FOLLOW_TIMEOUT."""
        request = outputs_pb2.FollowStepLogRequest(workflow=workflow, node_id=node_id, from_line=from_line)
        call = self._stub.FollowStepLog(request, timeout=FOLLOW_TIMEOUT)
        try:
            async for response in call:
                yield list(response.lines)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()

    async def delete_workflow_outputs(self, workflow: str) -> int:
        request = outputs_pb2.DeleteWorkflowOutputsRequest(workflow=workflow)
        try:
            response = await self._stub.DeleteWorkflowOutputs(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return response.deleted


class GrpcArtifacts:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = DOWNLOAD_TIMEOUT) -> None:
        self._stub = artifacts_pb2_grpc.ArtifactServiceStub(channel)
        self._timeout = timeout

    async def download(self, key: str, repository: str = "") -> AsyncIterator[bytes]:
        request = artifacts_pb2.DownloadArtifactRequest(key=key, repository=repository)
        call = self._stub.DownloadArtifact(request, timeout=self._timeout)
        expected = ""
        digest = hashlib.sha256()
        try:
            async for message in call:
                if message.WhichOneof("part") == "info":
                    expected = message.info.sha256
                elif message.WhichOneof("part") == "chunk":
                    digest.update(message.chunk)
                    yield message.chunk
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()
        if expected and digest.hexdigest() != expected:
            raise DataLoss(f"artifact {key!r} does not match its stored digest")

    async def check_repository(self, name: str) -> None:
        try:
            await self._stub.GetRepository(artifacts_pb2.GetRepositoryRequest(name=name), timeout=DEFAULT_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    async def run_gc(self, plan: GcPlan) -> int:
        return (await run_artifact_gc(self._stub, plan)).deleted


class GrpcTemplates:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = templates_pb2_grpc.WorkflowTemplateServiceStub(channel)
        self._timeout = timeout

    async def get_spec(self, name: str) -> dict[str, Any]:
        try:
            response = await self._stub.GetWorkflowTemplate(
                templates_pb2.GetWorkflowTemplateRequest(name=name), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return spec_to_dict(response.template.spec)
