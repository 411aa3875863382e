"""The OutputService servicer: read the token, call the core, map errors (by @grpc_errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from treadle.auth import STEP_TOKEN_METADATA
from treadle.errors import InvalidSpec
from treadle.grpcutil.status import grpc_errors
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.services.outputs.core import Outputs
from treadle.services.outputs.live_logs import LiveLogs

SERVICE_NAME: str = outputs_pb2.DESCRIPTOR.services_by_name["OutputService"].full_name


class OutputServicer(outputs_pb2_grpc.OutputServiceServicer):
    def __init__(self, core: Outputs, live_logs: LiveLogs | None = None) -> None:
        self._core = core
        self._live_logs = live_logs or LiveLogs()

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
        deleted = self._core.delete_workflow(request.workflow)
        self._live_logs.delete_workflow(request.workflow)
        return outputs_pb2.DeleteWorkflowOutputsResponse(deleted=deleted)

    @grpc_errors
    async def StreamStepLog(
        self,
        request_iterator: AsyncIterator[outputs_pb2.StreamStepLogRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> outputs_pb2.StreamStepLogResponse:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidSpec("the first message of a log stream must be its header", field="header")
        header = first.header
        self._core.tokens.check(
            metadata_value(context, STEP_TOKEN_METADATA), header.workflow, header.node_id, header.attempt
        )
        log = self._live_logs.open(header.workflow, header.node_id, header.attempt)
        try:
            async for request in requests:
                await self._live_logs.append(log, request.chunk)
        finally:
            await self._live_logs.close(log)
        return outputs_pb2.StreamStepLogResponse()

    @grpc_errors
    async def FollowStepLog(
        self, request: outputs_pb2.FollowStepLogRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[outputs_pb2.FollowStepLogResponse]:
        async for first_line, lines in self._live_logs.follow(request.workflow, request.node_id, request.from_line):
            yield outputs_pb2.FollowStepLogResponse(lines=lines, first_line=first_line)


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
