"""The server assembly: one grpc.aio server per process hosting one service or all four."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.channels import open_channel
from treadle.services.server import SERVICES, Stack, advertised_address, resolve_services, start_stack

REPO = Path(__file__).resolve().parents[2]
FULL_NAMES = {
    "admission": "treadle.admission.v1.AdmissionService",
    "scheduler": "treadle.scheduler.v1.SchedulerService",
    "artifacts": "treadle.artifacts.v1.ArtifactService",
    "outputs": "treadle.outputs.v1.OutputService",
}


def skip_unless_buildable(*names: str) -> None:
    """The scheduler needs its local runtime, which is written in parallel with this test."""
    if ("scheduler" in names or "all" in names) and importlib.util.find_spec(
        "treadle.services.scheduler.runtimes.local"
    ) is None:
        pytest.skip("the scheduler's local runtime does not exist yet")


def config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0", addresses=ServiceAddresses())


async def health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response: health_pb2.HealthCheckResponse = await stub.Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return int(response.status)


async def reflected_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names: set[str] = set()
    async for response in call:
        names |= {service.name for service in response.list_services_response.service}
    return names


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_alone_is_healthy_and_reflected(tmp_path: Path, name: str) -> None:
    skip_unless_buildable(name)

    async def main() -> None:
        stack = await start_stack(config(tmp_path), [name])
        channel = open_channel(stack.address)
        try:
            assert getattr(stack.addresses, name) == stack.address
            assert await health(channel, FULL_NAMES[name]) == health_pb2.HealthCheckResponse.SERVING
            assert await health(channel, "") == health_pb2.HealthCheckResponse.SERVING
            reflected = await reflected_services(channel)
            assert FULL_NAMES[name] in reflected
            assert reflected.isdisjoint(set(FULL_NAMES.values()) - {FULL_NAMES[name]})
        finally:
            await channel.close()
            await stack.stop(grace=0)

    asyncio.run(main())


def test_all_four_share_one_server(tmp_path: Path) -> None:
    skip_unless_buildable("all")

    async def main() -> None:
        stack = await start_stack(config(tmp_path))
        channel = open_channel(stack.address)
        try:
            assert stack.addresses == ServiceAddresses.all_at(stack.address)
            assert set(FULL_NAMES.values()) <= await reflected_services(channel)
        finally:
            await channel.close()
            await stack.stop(grace=0)

    asyncio.run(main())


def test_draining_reports_not_serving_before_stopping(tmp_path: Path) -> None:
    async def main() -> None:
        stack: Stack = await start_stack(config(tmp_path), ["outputs"])
        channel = open_channel(stack.address)
        try:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=FULL_NAMES["outputs"]), timeout=10
            )
            first = await watch.read()
            assert isinstance(first, health_pb2.HealthCheckResponse)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            stopping = asyncio.create_task(stack.stop(grace=2.0))
            second = await watch.read()
            assert isinstance(second, health_pb2.HealthCheckResponse)
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
            await stopping
        finally:
            await channel.close()

    asyncio.run(main())


def test_resolve_services_orders_dependencies_first_and_rejects_unknown_names() -> None:
    assert resolve_services(["all"]) == ["artifacts", "outputs", "scheduler", "admission"]
    assert resolve_services(["admission", "outputs"]) == ["outputs", "admission"]
    with pytest.raises(ValueError, match="nope"):
        resolve_services(["nope"])


def test_advertised_address_uses_loopback_for_wildcards() -> None:
    assert advertised_address("0.0.0.0:0", 4242) == "127.0.0.1:4242"
    assert advertised_address("[::]:7733", 7733) == "127.0.0.1:7733"
    assert advertised_address("10.1.2.3:0", 4242) == "10.1.2.3:4242"


def test_python_m_treadle_services_serves_until_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    env = {k: v for k, v in os.environ.items() if k != "TREADLE_TOKEN_SECRET"}
    command = [sys.executable, "-m", "treadle.services", "outputs", "--listen", "127.0.0.1:0"]
    command += ["--data-dir", str(tmp_path / "data"), "--port-file", str(port_file)]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        port = int(port_file.read_text())

        async def check() -> None:
            channel = open_channel(f"127.0.0.1:{port}")
            try:
                assert await health(channel, FULL_NAMES["outputs"]) == health_pb2.HealthCheckResponse.SERVING
            finally:
                await channel.close()

        asyncio.run(check())
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "serving outputs on 127.0.0.1:" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
