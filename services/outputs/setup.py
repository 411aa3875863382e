"""Assemble OutputService: repository, core, servicer, and its client channel to the scheduler."""

from __future__ import annotations

import sqlite3

import grpc

from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import ServiceBinding
from treadle.outputs.v1 import outputs_pb2_grpc
from treadle.services.outputs.core import NoScheduler, Outputs
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
        self._channel: grpc.aio.Channel | None = None

    async def start(self, addresses: ServiceAddresses) -> None:
        if addresses.scheduler:
            self._channel = open_channel(addresses.scheduler)
            self.core.scheduler = GrpcStepCompleter(self._channel, addresses.scheduler)

    async def stop(self) -> None:
        self.core.scheduler = NoScheduler()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def build(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> OutputsApp:
    return OutputsApp(Outputs(OutputRepository(conn), tokens))
