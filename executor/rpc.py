"""gRPC plumbing for the executor: channels reused across steps, step metadata, error text."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA
from treadle.grpcutil.channels import open_channel
from treadle.outputs.v1 import outputs_pb2_grpc
from treadle.scheduler.v1 import scheduler_pb2_grpc

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub
    from treadle.outputs.v1.outputs_pb2_grpc import OutputServiceAsyncStub
    from treadle.scheduler.v1.scheduler_pb2_grpc import SchedulerServiceAsyncStub

Metadata = tuple[tuple[str, str], ...]


def step_metadata(token: str, traceparent: str = "") -> Metadata:
    """The metadata of every call a step's executor makes."""
    metadata: Metadata = ((STEP_TOKEN_METADATA, token),)
    if traceparent:
        metadata += (("traceparent", traceparent),)
    return metadata


def describe_rpc_error(method: str, exc: grpc.aio.AioRpcError) -> str:
    """One line such as "GetStepContext: permission denied: invalid step token"."""
    code = exc.code()
    name = code.name.lower().replace("_", " ") if code is not None else "unknown"
    return f"{method}: {name}: {exc.details() or 'no details'}"


class ServiceChannels:
    """One channel per service address, opened on first use and shared by every step."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._schedulers: dict[str, SchedulerServiceAsyncStub] = {}
        self._artifacts: dict[str, ArtifactServiceAsyncStub] = {}
        self._outputs: dict[str, OutputServiceAsyncStub] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_channel(address)
        return channel

    def scheduler(self, address: str) -> SchedulerServiceAsyncStub:
        stub = self._schedulers.get(address)
        if stub is None:
            stub = self._schedulers[address] = scheduler_pb2_grpc.SchedulerServiceStub(self.channel(address))
        return stub

    def artifacts(self, address: str) -> ArtifactServiceAsyncStub:
        stub = self._artifacts.get(address)
        if stub is None:
            stub = self._artifacts[address] = artifacts_pb2_grpc.ArtifactServiceStub(self.channel(address))
        return stub

    def outputs(self, address: str) -> OutputServiceAsyncStub:
        stub = self._outputs.get(address)
        if stub is None:
            stub = self._outputs[address] = outputs_pb2_grpc.OutputServiceStub(self.channel(address))
        return stub

    async def close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        self._schedulers.clear()
        self._artifacts.clear()
        self._outputs.clear()
        for channel in channels:
            await channel.close()
