"""Build the SchedulerService app: repository, runtime, core and servicer."""

from __future__ import annotations

import sqlite3

from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.server import ServiceBinding
from treadle.scheduler.v1 import scheduler_pb2_grpc
from treadle.services.scheduler.artifacts_client import GrpcArtifactCalls
from treadle.services.scheduler.repository import SchedulerRepository
from treadle.services.scheduler.runtimes.base import Runtime
from treadle.services.scheduler.scheduler import Scheduler
from treadle.services.scheduler.service import SchedulerServicer

SERVICE_NAME = "treadle.scheduler.v1.SchedulerService"


RUNTIMES = ("local", "docker")


def make_runtime(config: ServerConfig) -> Runtime:
    if config.runtime == "local":
        from treadle.services.scheduler.runtimes.local import LocalRuntime

        return LocalRuntime(config.steps_dir)
    if config.runtime == "docker":
        from treadle.services.scheduler.runtimes.docker import DockerRuntime, DockerSettings, instance_id

        settings = DockerSettings(
            steps_dir=config.steps_dir,
            instance=instance_id(config.data_dir),
            docker_host=config.docker_host,
            secrets_dir=config.secrets_path,
        )
        return DockerRuntime(settings)
    raise ValueError(f"unknown runtime {config.runtime!r}; available: {', '.join(RUNTIMES)}")


class SchedulerApp:
    def __init__(self, scheduler: Scheduler, tokens: StepTokens, artifacts: GrpcArtifactCalls | None = None) -> None:
        self.scheduler = scheduler
        # ArtifactService, for large values' text and artifact GC; connected once its address is known.
        self.artifacts = artifacts or GrpcArtifactCalls()
        scheduler.artifacts = self.artifacts
        self.binding = ServiceBinding(
            SERVICE_NAME,
            SchedulerServicer(scheduler, tokens),
            scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server,
        )

    async def start(self, addresses: ServiceAddresses) -> None:
        self.artifacts.connect(addresses.artifacts)  # before resuming: resumed runs read their large values
        await self.scheduler.start(addresses)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.artifacts.close()


def build(
    config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens, runtime: Runtime | None = None
) -> SchedulerApp:
    scheduler = Scheduler(SchedulerRepository(conn), runtime or make_runtime(config), tokens)
    return SchedulerApp(scheduler, tokens)
