"""The server factory: every treadle server gets health checking and reflection."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from treadle.grpcutil.channels import MAX_MESSAGE_BYTES
from treadle.telemetry.interceptors import ServerTelemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceBinding:
    """One servicer to host: its full proto name and the generated add-function."""

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def drain(self, grace: float) -> None:
        """Report NOT_SERVING, stop taking calls, and let calls in flight finish within grace."""
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


async def create_server(
    bindings: Sequence[ServiceBinding], listen: str = "127.0.0.1:0", *, interceptors: Sequence[Any] = ()
) -> RunningServer:
    """Start a grpc.aio server hosting bindings, health and reflection on listen.

    Port 0 picks a free port, which tests use; RunningServer.port tells which. Every call is
    observed first (treadle.telemetry: the caller's trace context, a server span, a duration metric).
    """
    server = grpc.aio.server(
        interceptors=[ServerTelemetry(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for binding in bindings:
        binding.add_to_server(binding.servicer, server)
    names = tuple(b.name for b in bindings)
    reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, port=port, health=health_servicer, service_names=names)


async def wait_for_termination(stop: asyncio.Event | None = None) -> None:
    """Block until SIGTERM or SIGINT (or stop is set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
