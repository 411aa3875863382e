"""`treadle serve --metrics-port` exposes treadle's metrics to Prometheus at /metrics."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request
from pathlib import Path

import pytest
from served import ServedTreadle
from test_tracing import DAG

from treadle.client.client import TreadleClient
from treadle.workflow.v1 import workflow_pb2 as wf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for every sample line of a Prometheus text exposition."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def value(found: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of name whose labels include labels."""
    total = 0.0
    for key, number in found.items():
        metric, _, label_text = key.partition("{")
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric == name and all(pairs.get(k) == v for k, v in labels.items()):
            total += number
    return total


def test_metrics_are_served_to_prometheus(tmp_path: Path) -> None:
    port = free_port()

    async def main() -> str:
        server = await asyncio.to_thread(ServedTreadle, tmp_path, {}, ["--metrics-port", str(port)])
        try:
            async with TreadleClient(server.address) as client:
                await client.submit(DAG)
                final = await client.wait("traced", timeout=60)
            assert final.status.phase == wf.WORKFLOW_PHASE_SUCCEEDED
            url = f"http://127.0.0.1:{port}/metrics"
            # The last step's report finishes the workflow from inside the ReportStepOutputs call, and
            # the call's duration is recorded once it returns: scrape until every report is counted.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                response = await asyncio.to_thread(urllib.request.urlopen, url, timeout=10)
                assert response.status == 200
                text = str(response.read().decode())
                reports = value(samples(text), "rpc_server_call_duration_seconds_count", rpc_method="ReportStepOutputs")
                if reports >= 3 or asyncio.get_running_loop().time() > deadline:
                    return text
                await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(server.stop)

    found = samples(asyncio.run(main()))
    assert value(found, "treadle_workflows_started_total") == 1
    assert value(found, "treadle_workflows_finished_total", treadle_phase="Succeeded") == 1
    assert value(found, "treadle_workflows_active", treadle_phase="Running") == 0
    assert value(found, "treadle_nodes_started_total", treadle_node_type="Pod") == 3
    assert value(found, "treadle_nodes_finished_total", treadle_node_type="Pod", treadle_phase="Succeeded") == 3
    assert value(found, "treadle_step_duration_seconds_count", treadle_phase="Succeeded") == 3
    assert value(found, "treadle_step_duration_seconds_bucket", treadle_phase="Succeeded", le="+Inf") == 3
    assert value(found, "treadle_scheduling_latency_seconds_count") == 3
    assert value(found, "treadle_queue_depth") == 0
    # make uploads its artifact and three logs go up; use downloads make's artifact.
    assert value(found, "treadle_artifacts_transferred_bytes_total", treadle_direction="in") > 0
    assert value(found, "treadle_artifacts_transferred_bytes_total", treadle_direction="out") > 0
    assert (
        value(
            found,
            "rpc_server_call_duration_seconds_count",
            rpc_system="grpc",
            rpc_service="treadle.admission.v1.AdmissionService",
            rpc_method="SubmitWorkflow",
            rpc_grpc_status_code="0",
        )
        == 1
    )
    # Calls that still cross gRPC: one report per step, which carries the step's small log; make's artifact
    # (at most 1 MiB) in one PutArtifact call (no stream).
    server_calls = "rpc_server_call_duration_seconds_count"
    outputs = "treadle.outputs.v1.OutputService"
    assert (
        value(found, server_calls, rpc_service=outputs, rpc_method="ReportStepOutputs", rpc_grpc_status_code="0") == 3
    )
    artifacts = "treadle.artifacts.v1.ArtifactService"
    assert value(found, server_calls, rpc_service=artifacts, rpc_method="PutArtifact", rpc_grpc_status_code="0") == 1
    assert value(found, server_calls, rpc_method="UploadArtifact") == 0
    # The local runtime delivers each step's context with its launch, and OutputService hands reports to the
    # co-hosted scheduler in-process: neither call reaches the gRPC server.
    assert value(found, server_calls, rpc_method="GetStepContext") == 0
    assert value(found, server_calls, rpc_method="CompleteStep") == 0
