"""The AdmissionService servicer: convert requests, call the core, map errors (by @rpc)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from treadle.admission.v1 import admission_pb2, admission_pb2_grpc
from treadle.services.admission.core import Admission
from treadle.services.admission.listing import ListQuery
from treadle.services.admission.peers import Control, Verb
from treadle.services.admission.rpc import rpc
from treadle.services.admission.submission import Submission

SERVICE_NAME: str = admission_pb2.DESCRIPTOR.services_by_name["AdmissionService"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class AdmissionServicer(admission_pb2_grpc.AdmissionServiceServicer):
    def __init__(self, core: Admission) -> None:
        self._core = core

    @rpc
    async def SubmitWorkflow(
        self, request: admission_pb2.SubmitWorkflowRequest, context: Context
    ) -> admission_pb2.SubmitWorkflowResponse:
        source = request.WhichOneof("source")
        submission = Submission(
            workflow=request.workflow if source == "workflow" else None,
            manifest=request.manifest if source == "manifest" else None,
            parameters=dict(request.parameters),
            entrypoint=request.entrypoint,
            generate_name=request.generate_name,
            labels=dict(request.labels),
            request_id=request.request_id,
        )
        return admission_pb2.SubmitWorkflowResponse(workflow=await self._core.submit(submission))

    @rpc
    async def LintWorkflow(
        self, request: admission_pb2.LintWorkflowRequest, context: Context
    ) -> admission_pb2.LintWorkflowResponse:
        source = request.WhichOneof("source")
        submission = Submission(
            workflow=request.workflow if source == "workflow" else None,
            manifest=request.manifest if source == "manifest" else None,
            parameters=dict(request.parameters),
        )
        return admission_pb2.LintWorkflowResponse(workflow=await self._core.lint(submission))

    @rpc
    async def GetWorkflow(
        self, request: admission_pb2.GetWorkflowRequest, context: Context
    ) -> admission_pb2.GetWorkflowResponse:
        return admission_pb2.GetWorkflowResponse(workflow=await self._core.get(request.name))

    @rpc
    async def ListWorkflows(
        self, request: admission_pb2.ListWorkflowsRequest, context: Context
    ) -> admission_pb2.ListWorkflowsResponse:
        query = ListQuery(
            page_size=request.page_size,
            page_token=request.page_token,
            label_selector=request.label_selector,
            phases=tuple(request.phases),
            name_prefix=request.name_prefix,
        )
        workflows, next_page_token = await self._core.list_workflows(query)
        return admission_pb2.ListWorkflowsResponse(workflows=workflows, next_page_token=next_page_token)

    @rpc
    async def WatchWorkflow(
        self, request: admission_pb2.WatchWorkflowRequest, context: Context
    ) -> AsyncIterator[admission_pb2.WatchWorkflowResponse]:
        async for workflow in self._core.watch(request.name, request.resource_version):
            yield admission_pb2.WatchWorkflowResponse(workflow=workflow)

    @rpc
    async def DeleteWorkflow(
        self, request: admission_pb2.DeleteWorkflowRequest, context: Context
    ) -> admission_pb2.DeleteWorkflowResponse:
        await self._core.delete(request.name, request.request_id)
        return admission_pb2.DeleteWorkflowResponse()

    @rpc
    async def WorkflowLogs(
        self, request: admission_pb2.WorkflowLogsRequest, context: Context
    ) -> AsyncIterator[admission_pb2.WorkflowLogsResponse]:
        async for line in self._core.logs(request.name, request.node, follow=request.follow):
            yield admission_pb2.WorkflowLogsResponse(
                node_id=line.node_id, node_name=line.node_name, content=line.content
            )

    @rpc
    async def SuspendWorkflow(
        self, request: admission_pb2.SuspendWorkflowRequest, context: Context
    ) -> admission_pb2.SuspendWorkflowResponse:
        workflow = await self._core.control(request.name, Control(Verb.SUSPEND), request.request_id)
        return admission_pb2.SuspendWorkflowResponse(workflow=workflow)

    @rpc
    async def ResumeWorkflow(
        self, request: admission_pb2.ResumeWorkflowRequest, context: Context
    ) -> admission_pb2.ResumeWorkflowResponse:
        control = Control(Verb.RESUME, node=request.node)
        return admission_pb2.ResumeWorkflowResponse(
            workflow=await self._core.control(request.name, control, request.request_id)
        )

    @rpc
    async def StopWorkflow(
        self, request: admission_pb2.StopWorkflowRequest, context: Context
    ) -> admission_pb2.StopWorkflowResponse:
        control = Control(Verb.STOP, message=request.message)
        return admission_pb2.StopWorkflowResponse(
            workflow=await self._core.control(request.name, control, request.request_id)
        )

    @rpc
    async def TerminateWorkflow(
        self, request: admission_pb2.TerminateWorkflowRequest, context: Context
    ) -> admission_pb2.TerminateWorkflowResponse:
        control = Control(Verb.TERMINATE, message=request.message)
        return admission_pb2.TerminateWorkflowResponse(
            workflow=await self._core.control(request.name, control, request.request_id)
        )

    @rpc
    async def SetWorkflowNode(
        self, request: admission_pb2.SetWorkflowNodeRequest, context: Context
    ) -> admission_pb2.SetWorkflowNodeResponse:
        control = Control(
            Verb.SET_NODE,
            node=request.node,
            message=request.message,
            output_parameters=dict(request.output_parameters),
            phase=request.phase,
        )
        return admission_pb2.SetWorkflowNodeResponse(
            workflow=await self._core.control(request.name, control, request.request_id)
        )

    @rpc
    async def RetryWorkflow(
        self, request: admission_pb2.RetryWorkflowRequest, context: Context
    ) -> admission_pb2.RetryWorkflowResponse:
        workflow = await self._core.control(request.name, Control(Verb.RETRY), request.request_id)
        return admission_pb2.RetryWorkflowResponse(workflow=workflow)

    @rpc
    async def ResubmitWorkflow(
        self, request: admission_pb2.ResubmitWorkflowRequest, context: Context
    ) -> admission_pb2.ResubmitWorkflowResponse:
        workflow = await self._core.resubmit(request.name, dict(request.parameters), request.request_id)
        return admission_pb2.ResubmitWorkflowResponse(workflow=workflow)
