#!/usr/bin/env python3
"""The Docker runtime's overhead: a one-step workflow against a bare `docker run --rm`, side by side in one run.

    .venv/bin/python bench/docker_overhead.py [--rounds 7] [--chain 20] [--docker-host URL]

Starts a private Docker engine (tools/dockerd.py: vfs storage, its own socket;
or uses --docker-host / TREADLE_BENCH_DOCKER_HOST) with the busybox test image,
and one `treadle serve all --runtime docker` against it. Then, in alternating
order each round so that drift favours neither:

- bare:    `docker run --rm busybox:latest echo hi` (the docker CLI), wall time;
- treadle: a one-step workflow running that image and command, wall time from
           just before SubmitWorkflow until the watch shows the final phase.

Then a chain of --chain steps (each echoing the previous result plus one).
Prints one JSON document: the medians, their ratio against the target
(treadle <= 1.5x bare), the chain's wall time and its time per step. The
machine's load average is recorded too: these machines are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import dockerd  # noqa: E402  (tools/dockerd.py)

from treadle.client.client import TreadleClient  # noqa: E402
from treadle.workflow.v1 import workflow_pb2 as wf  # noqa: E402

IMAGE = "busybox:latest"
COMMAND = ["echo", "hi"]
TARGET_RATIO = 1.5


def one_step(name: str) -> str:
    return f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {{image: {IMAGE}, command: {json.dumps(COMMAND)}}}
"""


def chain(name: str, steps: int) -> str:
    groups = ["    - - {name: s0, template: add, arguments: {parameters: [{name: n, value: '0'}]}}"]
    for i in range(1, steps):
        groups.append(
            f"    - - {{name: s{i}, template: add, "
            f"arguments: {{parameters: [{{name: n, value: '{{{{steps.s{i - 1}.outputs.result}}}}'}}]}}}}"
        )
    body = "\n".join(groups)
    return f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
{body}
  - name: add
    inputs: {{parameters: [{{name: n}}]}}
    container: {{image: {IMAGE}, command: [sh, -c, "echo $(( {{{{inputs.parameters.n}}}} + 1 ))"]}}
"""


class Server:
    """`treadle serve all --runtime docker` in a subprocess."""

    def __init__(self, data_dir: Path, docker_host: str) -> None:
        port_file = data_dir / "port"
        command = [sys.executable, "-m", "treadle.services", "all", "--listen", "127.0.0.1:0"]
        command += ["--log-level", "WARNING", "--data-dir", str(data_dir / "state"), "--port-file", str(port_file)]
        command += ["--runtime", "docker", "--docker-host", docker_host]
        self._log = open(data_dir / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {data_dir / 'server.log'}")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{int(port_file.read_text())}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self._log.close()


def bare_run(docker: str, docker_host: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [docker, "run", "--rm", IMAGE, *COMMAND],
        env={**os.environ, "DOCKER_HOST": docker_host},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


async def treadle_run(client: TreadleClient, manifest: str, name: str) -> float:
    started = time.perf_counter()
    await client.submit(manifest)
    final = await client.wait(name, timeout=600)
    elapsed = time.perf_counter() - started
    if final.status.phase != wf.WORKFLOW_PHASE_SUCCEEDED:
        raise SystemExit(f"{name}: {final.status.message}")
    return elapsed


async def measure(address: str, docker: str, docker_host: str, rounds: int, steps: int) -> dict[str, Any]:
    bare: list[float] = []
    treadle: list[float] = []
    async with TreadleClient(address) as client:
        await treadle_run(client, one_step("warm-up"), "warm-up")  # images cached, connections open
        await asyncio.to_thread(bare_run, docker, docker_host)
        for index in range(rounds):
            order = ("bare", "treadle") if index % 2 == 0 else ("treadle", "bare")
            for which in order:
                if which == "bare":
                    bare.append(await asyncio.to_thread(bare_run, docker, docker_host))
                else:
                    treadle.append(await treadle_run(client, one_step(f"one-step-{index}"), f"one-step-{index}"))
            print(f"round {index + 1}: bare {bare[-1]:.3f} s, treadle {treadle[-1]:.3f} s", file=sys.stderr)
        chain_seconds = await treadle_run(client, chain("chain", steps), "chain")
    bare_median, treadle_median = statistics.median(bare), statistics.median(treadle)
    ratio = treadle_median / bare_median
    return {
        "single_step": {
            "bare_docker_run_seconds": round(bare_median, 3),
            "treadle_seconds": round(treadle_median, 3),
            "ratio": round(ratio, 2),
            "target_ratio": TARGET_RATIO,
            "target_met": ratio <= TARGET_RATIO,
            "bare_samples": [round(s, 3) for s in bare],
            "treadle_samples": [round(s, 3) for s in treadle],
        },
        "chain": {
            "steps": steps,
            "seconds": round(chain_seconds, 2),
            "seconds_per_step": round(chain_seconds / steps, 3),
            "per_step_vs_bare_docker_run": round(chain_seconds / steps / bare_median, 2),
        },
    }


async def main(rounds: int, steps: int, docker_host: str) -> int:
    docker = shutil.which("docker")
    if docker is None:
        raise SystemExit("the docker CLI is needed for the bare `docker run` (Debian: docker.io)")
    engine: dockerd.PrivateDockerd | None = None
    if not docker_host:
        engine = await asyncio.to_thread(dockerd.start_dockerd)
        docker_host = engine.host
    load_before = os.getloadavg()[0]
    try:
        await asyncio.to_thread(dockerd.build_test_images, docker_host, python=False)
        with tempfile.TemporaryDirectory(prefix="treadle-bench-docker-") as tmp:
            server = await asyncio.to_thread(Server, Path(tmp), docker_host)
            try:
                figures = await measure(server.address, docker, docker_host, rounds, steps)
            finally:
                await asyncio.to_thread(server.stop)
    finally:
        if engine is not None:
            await asyncio.to_thread(engine.stop)
    figures["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "storage_driver": "vfs",
    }
    figures["rounds"] = rounds
    figures["notes"] = (
        "bare is the docker CLI's `docker run --rm`, which also waits for the container's removal; "
        "treadle removes a step's containers after its report, off the workflow's path"
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chain", type=int, default=20, help="steps in the chain (default 20)")
    parser.add_argument("--docker-host", default=os.environ.get("TREADLE_BENCH_DOCKER_HOST", ""))
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments.rounds, arguments.chain, arguments.docker_host)))
