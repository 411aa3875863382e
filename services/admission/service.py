"""The AdmissionService servicer: convert requests, call the core, map errors (by @grpc_errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from treadle.admission.v1 import admission_pb2, admission_pb2_grpc
from treadle.grpcutil.status import grpc_errors
from treadle.services.admission.core import Admission
from treadle.services.admission.submission import Submission

SERVICE_NAME: str = admission_pb2.DESCRIPTOR.services_by_name["AdmissionService"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class AdmissionServicer(admission_pb2_grpc.AdmissionServiceServicer):
    def __init__(self, core: Admission) -> None:
        self._core = core

    @grpc_errors
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

    @grpc_errors
    async def LintWorkflow(
        self, request: admission_pb2.LintWorkflowRequest, context: Context
    ) -> admission_pb2.LintWorkflowResponse:
        source = request.WhichOneof("source")
        submission = Submission(
            workflow=request.workflow if source == "workflow" else None,
            manifest=request.manifest if source == "manifest" else None,
            parameters=dict(request.parameters),
        )
        return admission_pb2.LintWorkflowResponse(workflow=self._core.lint(submission))

    @grpc_errors
    async def GetWorkflow(
        self, request: admission_pb2.GetWorkflowRequest, context: Context
    ) -> admission_pb2.GetWorkflowResponse:
        return admission_pb2.GetWorkflowResponse(workflow=await self._core.get(request.name))

    @grpc_errors
    async def ListWorkflows(
        self, request: admission_pb2.ListWorkflowsRequest, context: Context
    ) -> admission_pb2.ListWorkflowsResponse:
        workflows, next_page_token = await self._core.list_workflows(request.page_size, request.page_token)
        return admission_pb2.ListWorkflowsResponse(workflows=workflows, next_page_token=next_page_token)

    @grpc_errors
    async def WatchWorkflow(
        self, request: admission_pb2.WatchWorkflowRequest, context: Context
    ) -> AsyncIterator[admission_pb2.WatchWorkflowResponse]:
        async for workflow in self._core.watch(request.name):
            yield admission_pb2.WatchWorkflowResponse(workflow=workflow)

    @grpc_errors
    async def DeleteWorkflow(
        self, request: admission_pb2.DeleteWorkflowRequest, context: Context
    ) -> admission_pb2.DeleteWorkflowResponse:
        await self._core.delete(request.name, request.request_id)
        return admission_pb2.DeleteWorkflowResponse()

    @grpc_errors
    async def WorkflowLogs(
        self, request: admission_pb2.WorkflowLogsRequest, context: Context
    ) -> AsyncIterator[admission_pb2.WorkflowLogsResponse]:
        async for line in self._core.logs(request.name, request.node):
            yield admission_pb2.WorkflowLogsResponse(
                node_id=line.node_id, node_name=line.node_name, content=line.content
            )
