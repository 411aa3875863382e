"""SchedulerService: a thin gRPC layer over the Scheduler core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format

from treadle.auth import STEP_TOKEN_METADATA, StepTokens
from treadle.errors import FieldViolation, InvalidSpec
from treadle.grpcutil.status import grpc_errors
from treadle.scheduler.v1 import scheduler_pb2 as pb
from treadle.scheduler.v1 import scheduler_pb2_grpc
from treadle.services.scheduler.scheduler import Scheduler, Snapshot
from treadle.services.scheduler.status import PHASE_NAMES, workflow_status
from treadle.spec.convert import spec_to_dict, template_from_dict
from treadle.workflow.v1 import workflow_pb2 as wf

Context = grpc.aio.ServicerContext[Any, Any]
FINAL_STEP_PHASES = (wf.NODE_PHASE_SUCCEEDED, wf.NODE_PHASE_FAILED, wf.NODE_PHASE_ERROR)


def step_token(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == STEP_TOKEN_METADATA:
            return str(value)
    return None


def require(value: str, field: str) -> str:
    if not value:
        raise InvalidSpec(FieldViolation(field, f"{field} is required"))
    return value


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, scheduler: Scheduler, tokens: StepTokens) -> None:
        self.scheduler = scheduler
        self.tokens = tokens

    @grpc_errors
    async def StartWorkflow(self, request: pb.StartWorkflowRequest, context: Context) -> pb.StartWorkflowResponse:
        meta = request.workflow.metadata
        require(meta.name, "workflow.metadata.name")
        require(meta.uid, "workflow.metadata.uid")
        require(request.workflow.spec.entrypoint, "workflow.spec.entrypoint")
        created = meta.creation_timestamp.ToNanoseconds() / 1e9 if meta.HasField("creation_timestamp") else None
        metadata = {"labels": dict(meta.labels), "annotations": dict(meta.annotations)}
        started = await self.scheduler.start_workflow(
            meta.name, meta.uid, meta.namespace, created, spec_to_dict(request.workflow.spec), metadata
        )
        return pb.StartWorkflowResponse(started=started)

    @grpc_errors
    async def GetWorkflowStatus(
        self, request: pb.GetWorkflowStatusRequest, context: Context
    ) -> pb.GetWorkflowStatusResponse:
        snap = self.scheduler.snapshot(require(request.name, "name"), with_nodes=not request.omit_nodes)
        return pb.GetWorkflowStatusResponse(status=_status(snap, request.omit_nodes), resource_version=snap.version)

    @grpc_errors
    async def BatchGetWorkflowStatus(
        self, request: pb.BatchGetWorkflowStatusRequest, context: Context
    ) -> pb.BatchGetWorkflowStatusResponse:
        states = self.scheduler.states(list(request.names))
        return pb.BatchGetWorkflowStatusResponse(statuses={n: workflow_status(s) for n, s in states.items()})

    @grpc_errors
    async def WatchWorkflowStatus(
        self, request: pb.WatchWorkflowStatusRequest, context: Context
    ) -> AsyncIterator[pb.WatchWorkflowStatusResponse]:
        async for snap in self.scheduler.watch(require(request.name, "name")):
            yield pb.WatchWorkflowStatusResponse(
                status=_status(snap, request.omit_nodes), resource_version=snap.version
            )

    @grpc_errors
    async def DeleteWorkflow(self, request: pb.DeleteWorkflowRequest, context: Context) -> pb.DeleteWorkflowResponse:
        await self.scheduler.delete(require(request.name, "name"))
        return pb.DeleteWorkflowResponse()

    @grpc_errors
    async def GetStepContext(self, request: pb.GetStepContextRequest, context: Context) -> pb.GetStepContextResponse:
        self.tokens.check(step_token(context), request.workflow, request.node_id, request.attempt)
        template, node, state = self.scheduler.step_context(request.workflow, request.node_id, request.attempt)
        return pb.GetStepContextResponse(
            workflow=state.name,
            workflow_uid=state.uid,
            node_id=node.id,
            pod_name=node.pod_name,
            attempt=node.attempt,
            template=template_from_dict(template),
            artifact_repository=self.scheduler.artifact_repository(request.workflow),
        )

    @grpc_errors
    async def CompleteStep(self, request: pb.CompleteStepRequest, context: Context) -> pb.CompleteStepResponse:
        require(request.workflow, "workflow")
        require(request.node_id, "node_id")
        if request.phase not in FINAL_STEP_PHASES:
            raise InvalidSpec(FieldViolation("phase", "phase must be SUCCEEDED, FAILED or ERROR"))
        outputs = json_format.MessageToDict(request.outputs)
        accepted = await self.scheduler.complete_step(
            request.workflow, request.node_id, request.attempt, PHASE_NAMES[request.phase], outputs, request.message
        )
        return pb.CompleteStepResponse(accepted=accepted)

    @grpc_errors
    async def SuspendWorkflow(self, request: pb.SuspendWorkflowRequest, context: Context) -> pb.SuspendWorkflowResponse:
        snap = await self.scheduler.control(require(request.name, "name"), "suspend")
        return pb.SuspendWorkflowResponse(status=_status(snap))

    @grpc_errors
    async def ResumeWorkflow(self, request: pb.ResumeWorkflowRequest, context: Context) -> pb.ResumeWorkflowResponse:
        snap = await self.scheduler.control(require(request.name, "name"), "resume", selector=request.node)
        return pb.ResumeWorkflowResponse(status=_status(snap))

    @grpc_errors
    async def StopWorkflow(self, request: pb.StopWorkflowRequest, context: Context) -> pb.StopWorkflowResponse:
        snap = await self.scheduler.control(require(request.name, "name"), "stop", message=request.message)
        return pb.StopWorkflowResponse(status=_status(snap))

    @grpc_errors
    async def TerminateWorkflow(
        self, request: pb.TerminateWorkflowRequest, context: Context
    ) -> pb.TerminateWorkflowResponse:
        snap = await self.scheduler.control(require(request.name, "name"), "terminate", message=request.message)
        return pb.TerminateWorkflowResponse(status=_status(snap))

    @grpc_errors
    async def SetWorkflowNode(self, request: pb.SetWorkflowNodeRequest, context: Context) -> pb.SetWorkflowNodeResponse:
        phase = PHASE_NAMES.get(request.phase, "") if request.phase else ""
        if phase and phase not in ("Succeeded", "Failed", "Error"):
            raise InvalidSpec(FieldViolation("phase", "phase must be SUCCEEDED, FAILED or ERROR"))
        snap = await self.scheduler.control(
            require(request.name, "name"),
            "set_node",
            selector=require(request.node, "node"),
            parameters=dict(request.output_parameters),
            phase=phase,
            message=request.message,
        )
        return pb.SetWorkflowNodeResponse(status=_status(snap))

    @grpc_errors
    async def RetryWorkflow(self, request: pb.RetryWorkflowRequest, context: Context) -> pb.RetryWorkflowResponse:
        snap = await self.scheduler.control(require(request.name, "name"), "retry_failed")
        return pb.RetryWorkflowResponse(status=_status(snap))

    @grpc_errors
    async def SetSemaphore(self, request: pb.SetSemaphoreRequest, context: Context) -> pb.SetSemaphoreResponse:
        self.scheduler.locks.set_semaphore(require(request.name, "name"), request.limit)
        self.scheduler.wake_lock_waiters()
        return pb.SetSemaphoreResponse()

    @grpc_errors
    async def DeleteSemaphore(self, request: pb.DeleteSemaphoreRequest, context: Context) -> pb.DeleteSemaphoreResponse:
        self.scheduler.locks.delete_semaphore(require(request.name, "name"))
        return pb.DeleteSemaphoreResponse()

    @grpc_errors
    async def ListLocks(self, request: pb.ListLocksRequest, context: Context) -> pb.ListLocksResponse:
        infos = self.scheduler.locks.describe()
        return pb.ListLocksResponse(locks=[pb.Lock(name=i.name, limit=i.limit, holders=i.holders) for i in infos])


def _status(snap: Snapshot, omit_nodes: bool = False) -> wf.WorkflowStatus:
    return workflow_status(snap.state, () if omit_nodes else snap.nodes)
