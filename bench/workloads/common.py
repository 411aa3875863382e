"""Pieces the treadle side of every workload shares: a warmed-up server, `treadle run`, load figures."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import manifests
from bench.observe import Outcome, run_workflow
from bench.server import TreadleServer, treadle_command
from treadle.client import TreadleClient

WARM_UP_TIMEOUT = 60.0


@asynccontextmanager
async def warm_server(profile: Path | None = None) -> AsyncIterator[tuple[TreadleServer, TreadleClient]]:
    """A fresh `treadle serve all` that has run one workflow already (so its executor host is up).

    With profile, py-spy samples it into that file (see bench/profiling.py).
    """
    async with TreadleServer(profile=profile) as server:
        async with TreadleClient(server.address) as client:
            outcome = await run_workflow(
                client, manifests.text(manifests.single_step("warm-up")), timeout=WARM_UP_TIMEOUT, observer="watch"
            )
            if not outcome.succeeded:
                raise RuntimeError(
                    f"the warm-up workflow failed: {outcome.describe()}; server log: {server.log_tail()}"
                )
            yield server, client


@dataclass
class ColdRun:
    """`treadle run FILE`: the embedded stack started, the workflow run, everything stopped."""

    ok: bool
    wall_seconds: float
    error: str = ""


def treadle_run(manifest: str, *, timeout: float) -> ColdRun:
    with tempfile.TemporaryDirectory(prefix="bench-treadle-run-") as scratch:
        path = Path(scratch) / "workflow.json"
        path.write_text(manifest)
        command = [*treadle_command(), "run", str(path), "--data-dir", str(Path(scratch) / "data"), "-o", "json"]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return ColdRun(ok=False, wall_seconds=timeout, error=f"did not finish within {timeout:g}s")
        wall = time.perf_counter() - started
    if done.returncode != 0:
        return ColdRun(ok=False, wall_seconds=wall, error=f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return ColdRun(ok=True, wall_seconds=wall)


def outcome_json(outcome: Outcome) -> dict[str, object]:
    return {
        "workflow": outcome.name,
        "phase": outcome.phase,
        "seconds": round(outcome.seconds, 3),
        "timed_out": outcome.timed_out,
        "progress": outcome.progress,
        "message": outcome.message,
    }
