"""chain and fan on Prefect 3 with its ephemeral server (bench/peers/prefect_flows.py in the peers' venv).

Each run gets a scratch PREFECT_HOME copied from a template whose database is
already migrated (made once, by peers-setup or the first run), as a user's
home would be: a fresh home costs Prefect ~15 s of migrations per run, which
is not what its users pay. Everything that would reach beyond loopback
(analytics, telemetry, the version check, the UI) is turned off; the
ephemeral API server listens on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.peers.venv import PEERS_VENV, python
from bench.results import PeerRun

FLOWS = Path(__file__).with_name("prefect_flows.py")
HOME_TEMPLATE = PEERS_VENV / "prefect-home"
RESULT_MARKER = "BENCH-RESULT "  # as prefect_flows.RESULT_MARKER, which cannot be imported here

OFFLINE_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def _environment(home: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        **OFFLINE_SETTINGS,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # two busy cores start it slowly
    }


def prepare_home(*, timeout: float = 300.0) -> str | None:
    """Make the migrated PREFECT_HOME template unless it exists; None on success, else why not."""
    if (HOME_TEMPLATE / "prefect.db").exists():
        return None
    partial = HOME_TEMPLATE.with_name(HOME_TEMPLATE.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run = _run_flows(["chain", "1"], partial, timeout)
    if not run.ok:
        return f"preparing Prefect's home failed: {run.error}"
    partial.rename(HOME_TEMPLATE)
    return None


def run(shape: str, size: int, *, timeout: float) -> PeerRun:
    problem = prepare_home(timeout=timeout)
    if problem:
        return PeerRun.failed(problem)
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(HOME_TEMPLATE, home)
        return _run_flows([shape, str(size)], home, timeout)


def _run_flows(args: list[str], home: Path, timeout: float) -> PeerRun:
    log = home / "bench-prefect.log"
    started = time.perf_counter()
    with log.open("w+") as out:
        try:
            code = subprocess.run(
                [str(python()), str(FLOWS), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_environment(home),
                cwd=home,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return PeerRun.failed(f"did not finish within {timeout:g}s")
        wall = time.perf_counter() - started
        out.seek(0)
        output = out.read()
    if code != 0:
        return PeerRun.failed(f"exited with {code}: {' | '.join(output.strip().splitlines()[-5:])}")
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        return PeerRun.failed("printed no result")
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    return PeerRun(ok=True, wall_seconds=wall, warm_seconds=float(result["warm_seconds"]), answer=result["answer"])
