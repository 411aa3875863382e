"""The OutputService servicer: read the token, call the core, map errors (by @grpc_errors)."""

from __future__ import annotations

from typing import Any

import grpc

from treadle.auth import STEP_TOKEN_METADATA
from treadle.grpcutil.status import grpc_errors
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.services.outputs.core import Outputs

SERVICE_NAME: str = outputs_pb2.DESCRIPTOR.services_by_name["OutputService"].full_name


class OutputServicer(outputs_pb2_grpc.OutputServiceServicer):
    def __init__(self, core: Outputs) -> None:
        self._core = core

    @grpc_errors
    async def ReportStepOutputs(
        self, request: outputs_pb2.ReportStepOutputsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> outputs_pb2.ReportStepOutputsResponse:
        recorded = await self._core.report(request, metadata_value(context, STEP_TOKEN_METADATA))
        return outputs_pb2.ReportStepOutputsResponse(recorded=recorded)

    @grpc_errors
    async def GetStepOutputs(
        self, request: outputs_pb2.GetStepOutputsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> outputs_pb2.GetStepOutputsResponse:
        report = self._core.get(request.workflow, request.node_id, request.attempt)
        return outputs_pb2.GetStepOutputsResponse(report=report)

    @grpc_errors
    async def DeleteWorkflowOutputs(
        self, request: outputs_pb2.DeleteWorkflowOutputsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> outputs_pb2.DeleteWorkflowOutputsResponse:
        return outputs_pb2.DeleteWorkflowOutputsResponse(deleted=self._core.delete_workflow(request.workflow))


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
