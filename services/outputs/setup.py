"""Assemble OutputService: repository, core, servicer, and its client channels to the scheduler and ArtifactService."""

from __future__ import annotations

import sqlite3

import grpc

from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import ServiceBinding
from treadle.outputs.v1 import outputs_pb2_grpc
from treadle.services.outputs.artifacts_client import GrpcLogStore
from treadle.services.outputs.core import NoScheduler, Outputs
from treadle.services.outputs.log_store import NoLogStore
from treadle.services.outputs.repository import OutputRepository
from treadle.services.outputs.scheduler_client import GrpcStepCompleter
from treadle.services.outputs.service import SERVICE_NAME, OutputServicer


class OutputsApp:
    def __init__(self, core: Outputs) -> None:
        self.core = core
        self.binding = ServiceBinding(
            name=SERVICE_NAME,
            servicer=OutputServicer(core),
            add_to_server=outputs_pb2_grpc.add_OutputServiceServicer_to_server,
        )
        self._channels: list[grpc.aio.Channel] = []

    async def start(self, addresses: ServiceAddresses) -> None:
        if addresses.scheduler:
            channel = open_channel(addresses.scheduler)
            self._channels.append(channel)
            self.core.scheduler = GrpcStepCompleter(channel, addresses.scheduler)
        if addresses.artifacts:
            channel = open_channel(addresses.artifacts)
            self._channels.append(channel)
            self.core.logs = GrpcLogStore(channel, addresses.artifacts)

    async def stop(self) -> None:
        self.core.scheduler = NoScheduler()
        self.core.logs = NoLogStore()
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close()


def build(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> OutputsApp:
    return OutputsApp(Outputs(OutputRepository(conn), tokens))
