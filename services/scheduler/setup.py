"""Build the SchedulerService app: repository, runtime, core and servicer."""

from __future__ import annotations

import sqlite3

from treadle.auth import StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.server import ServiceBinding
from treadle.scheduler.v1 import scheduler_pb2_grpc
from treadle.services.scheduler.repository import SchedulerRepository
from treadle.services.scheduler.runtimes.base import Runtime
from treadle.services.scheduler.scheduler import Scheduler
from treadle.services.scheduler.service import SchedulerServicer

SERVICE_NAME = "treadle.scheduler.v1.SchedulerService"


def make_runtime(config: ServerConfig) -> Runtime:
    if config.runtime == "local":
        from treadle.services.scheduler.runtimes.local import LocalRuntime

        return LocalRuntime(config.steps_dir)
    raise ValueError(f"unknown runtime {config.runtime!r}; available: local")


class SchedulerApp:
    def __init__(self, scheduler: Scheduler, tokens: StepTokens) -> None:
        self.scheduler = scheduler
        self.binding = ServiceBinding(
            SERVICE_NAME,
            SchedulerServicer(scheduler, tokens),
            scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server,
        )

    async def start(self, addresses: ServiceAddresses) -> None:
        await self.scheduler.start(addresses)

    async def stop(self) -> None:
        await self.scheduler.stop()


def build(
    config: ServerConfig, conn: sqlite3.Connection, tokens: StepTokens, runtime: Runtime | None = None
) -> SchedulerApp:
    scheduler = Scheduler(SchedulerRepository(conn), runtime or make_runtime(config), tokens)
    return SchedulerApp(scheduler, tokens)
