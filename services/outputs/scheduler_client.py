"""The scheduler as OutputService sees it: CompleteStep over gRPC (in-process when co-hosted), with a deadline."""

from __future__ import annotations

import grpc

from treadle.grpcutil import inprocess
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.grpcutil.status import error_from_rpc
from treadle.outputs.v1.outputs_pb2 import ReportStepOutputsRequest
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

SCHEDULER_SERVICE = scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name


class GrpcStepCompleter:
    def __init__(self, channel: grpc.aio.Channel, address: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        remote = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        self._stub = inprocess.stub(address, SCHEDULER_SERVICE, remote, {"CompleteStep"})
        self._timeout = timeout

    async def complete_step(self, report: ReportStepOutputsRequest) -> bool:
        request = scheduler_pb2.CompleteStepRequest(
            workflow=report.workflow,
            node_id=report.node_id,
            attempt=report.attempt,
            phase=report.phase,
            message=report.message,
            outputs=report.outputs,
        )
        try:
            response = await self._stub.CompleteStep(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
        return bool(response.accepted)
