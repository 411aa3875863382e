"""Assemble AdmissionService: repository, core, servicer, peer channels and the hand-off reconciler."""

from __future__ import annotations

import sqlite3

import grpc

from treadle.admission.v1 import admission_pb2_grpc
from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import ServiceBinding
from treadle.services.admission.clients import GrpcArtifacts, GrpcOutputs, GrpcScheduler, GrpcTemplates
from treadle.services.admission.core import Admission
from treadle.services.admission.peers import Peers
from treadle.services.admission.reconciler import HandOffReconciler
from treadle.services.admission.repository import AdmissionRepository
from treadle.services.admission.service import SERVICE_NAME, AdmissionServicer


class AdmissionApp:
    def __init__(self, core: Admission, reconciler: HandOffReconciler) -> None:
        self.core = core
        self.reconciler = reconciler
        self.binding = ServiceBinding(
            name=SERVICE_NAME,
            servicer=AdmissionServicer(core),
            add_to_server=admission_pb2_grpc.add_AdmissionServiceServicer_to_server,
        )
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def start(self, addresses: ServiceAddresses) -> None:
        peers = Peers.not_connected()
        if addresses.scheduler:
            peers.scheduler = GrpcScheduler(self._channel(addresses.scheduler), addresses.scheduler)
        if addresses.outputs:
            peers.outputs = GrpcOutputs(self._channel(addresses.outputs))
        if addresses.artifacts:
            peers.artifacts = GrpcArtifacts(self._channel(addresses.artifacts))
        if addresses.templates or addresses.admission:
            peers.templates = GrpcTemplates(self._channel(addresses.templates or addresses.admission))
        self.core.peers = peers
        self.reconciler.start()

    def begin_drain(self) -> None:
        """The server is shutting down: end open watches so that their clients resume elsewhere."""
        self.core.end_watches()

    async def stop(self) -> None:
        await self.reconciler.stop()
        self.core.peers = Peers.not_connected()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _channel(self, address: str) -> grpc.aio.Channel:
        """One channel per distinct address: in the all-in-one server the peers share one."""
        if address not in self._channels:
            self._channels[address] = open_channel(address)
        return self._channels[address]


def build(config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens) -> AdmissionApp:
    """tokens is unused: admission issues and checks none, but every service's build takes the same arguments."""
    core = Admission(AdmissionRepository(conn))
    return AdmissionApp(core, HandOffReconciler(core))
