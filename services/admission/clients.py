"""gRPC implementations of the peers the admission core talks to. Every call carries a deadline."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import grpc

from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.errors import DataLoss
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import error_from_rpc
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from treadle.services.admission.peers import StatusSnapshot
from treadle.workflow.v1 import workflow_pb2

# A watch is reopened after this long, so it has a deadline yet may last as long as the workflow.
WATCH_SEGMENT_SECONDS = 300.0
# Deadline of one log download.
DOWNLOAD_TIMEOUT = 300.0
LATEST_ATTEMPT = -1


class GrpcScheduler:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        self._timeout = timeout

    async def start_workflow(self, workflow: workflow_pb2.Workflow) -> None:
        try:
            await self._stub.StartWorkflow(scheduler_pb2.StartWorkflowRequest(workflow=workflow), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    async def get_status(self, name: str) -> StatusSnapshot:
        try:
            response = await self._stub.GetWorkflowStatus(
                scheduler_pb2.GetWorkflowStatusRequest(name=name), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return StatusSnapshot(response.status, response.resource_version)

    async def batch_status(self, names: list[str]) -> dict[str, workflow_pb2.WorkflowStatus]:
        try:
            response = await self._stub.BatchGetWorkflowStatus(
                scheduler_pb2.BatchGetWorkflowStatusRequest(names=names), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return dict(response.statuses)

    async def watch(self, name: str) -> AsyncIterator[StatusSnapshot]:
        """Reopens the scheduler's watch whenever a segment's deadline passes, skipping what was seen."""
        seen_version = -1
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

    async def download(self, key: str) -> AsyncIterator[bytes]:
        call = self._stub.DownloadArtifact(artifacts_pb2.DownloadArtifactRequest(key=key), timeout=self._timeout)
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
