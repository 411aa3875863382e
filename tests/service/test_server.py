"""The server assembly: one grpc.aio server per process hosting one service or all four."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.channels import open_channel
from treadle.services.server import SERVICES, Stack, advertised_address, resolve_services, start_stack
from treadle.workflow.v1 import workflow_pb2

REPO = Path(__file__).resolve().parents[2]
FULL_NAMES = {
    "admission": "treadle.admission.v1.AdmissionService",
    "scheduler": "treadle.scheduler.v1.SchedulerService",
    "artifacts": "treadle.artifacts.v1.ArtifactService",
    "outputs": "treadle.outputs.v1.OutputService",
    "templates": "treadle.templates.v1.WorkflowTemplateService",
}
# Admission resolves templateRefs, so WorkflowTemplateService is always hosted beside it.
CO_HOSTED = {"admission": {"templates"}}


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

    async def main() -> None:
        stack = await start_stack(config(tmp_path), [name])
        channel = open_channel(stack.address)
        try:
            assert getattr(stack.addresses, name) == stack.address
            assert await health(channel, FULL_NAMES[name]) == health_pb2.HealthCheckResponse.SERVING
            assert await health(channel, "") == health_pb2.HealthCheckResponse.SERVING
            reflected = await reflected_services(channel)
            hosted = {FULL_NAMES[n] for n in {name} | CO_HOSTED.get(name, set())}
            assert hosted <= reflected
            assert reflected.isdisjoint(set(FULL_NAMES.values()) - hosted)
        finally:
            await channel.close()
            await stack.stop(grace=0)

    asyncio.run(main())


def test_all_four_share_one_server(tmp_path: Path) -> None:

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
    assert resolve_services(["all"]) == ["artifacts", "outputs", "scheduler", "templates", "admission"]
    assert resolve_services(["admission", "outputs"]) == ["outputs", "templates", "admission"]
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


# ---------------------------------------------------------------------- graceful shutdown

SLEEPER = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sleeper-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: busybox, command: [sh, -c], args: ["sleep 60"]}
"""


def test_a_call_in_flight_finishes_during_the_drain_and_new_ones_are_turned_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission drains first: its call in flight still reaches the scheduler on the same server."""
    from treadle.admission.v1 import admission_pb2, admission_pb2_grpc
    from treadle.services.admission.core import Admission

    entered = asyncio.Event()
    read_status = Admission._status

    async def slow_status(self: Admission, record: Any) -> Any:
        entered.set()
        await asyncio.sleep(1.0)  # the drain begins meanwhile
        return await read_status(self, record)

    monkeypatch.setattr(Admission, "_status", slow_status)

    async def main() -> None:
        stack = await start_stack(config(tmp_path))
        channel = open_channel(stack.address)
        stub = admission_pb2_grpc.AdmissionServiceStub(channel)
        try:
            submitted = await stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(manifest=SLEEPER), timeout=10)
            name = submitted.workflow.metadata.name
            in_flight = asyncio.ensure_future(stub.GetWorkflow(admission_pb2.GetWorkflowRequest(name=name), timeout=10))
            await entered.wait()
            stopping = asyncio.create_task(stack.stop(grace=5.0))
            await asyncio.sleep(0.2)
            assert await health(channel, FULL_NAMES["admission"]) == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListWorkflows(admission_pb2.ListWorkflowsRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (refused.value.details() or "")
            finished = await in_flight
            assert finished.workflow.metadata.name == name and finished.workflow.metadata.resource_version
            await stopping
        finally:
            await channel.close()
            await stack.stop(grace=0)

    asyncio.run(main())


def test_sigterm_ends_open_watches_with_a_resume_point_and_exits_0(tmp_path: Path) -> None:
    """`treadle serve all` with a WatchWorkflow in flight: SIGTERM drains well within the grace period."""
    from treadle.admission.v1 import admission_pb2, admission_pb2_grpc

    treadle = Path(sys.executable).parent / "treadle"
    port_file = tmp_path / "port"
    command = [str(treadle), "serve", "all", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")]
    command += ["--port-file", str(port_file), "--grace-period", "20"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        address = f"127.0.0.1:{int(port_file.read_text())}"

        async def watch_through_sigterm() -> tuple[grpc.StatusCode, str, str]:
            channel = open_channel(address)
            try:
                stub = admission_pb2_grpc.AdmissionServiceStub(channel)
                submitted = await stub.SubmitWorkflow(admission_pb2.SubmitWorkflowRequest(manifest=SLEEPER), timeout=10)
                watch = stub.WatchWorkflow(
                    admission_pb2.WatchWorkflowRequest(name=submitted.workflow.metadata.name), timeout=60
                )
                version = ""
                while True:
                    event = await watch.read()
                    assert isinstance(event, admission_pb2.WatchWorkflowResponse)
                    version = event.workflow.metadata.resource_version
                    if event.workflow.status.phase == workflow_pb2.WORKFLOW_PHASE_RUNNING:
                        break
                process.send_signal(signal.SIGTERM)
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await watch.read()
                return ended.value.code(), ended.value.details() or "", version
            finally:
                await channel.close()

        started = time.monotonic()
        code, details, version = asyncio.run(watch_through_sigterm())
        assert code == grpc.StatusCode.UNAVAILABLE, details
        assert f"resume with resource_version={version}" in details
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert time.monotonic() - started < 15, "the drain waited for the watch instead of ending it"
        assert "shutting down: draining for up to 20s" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
