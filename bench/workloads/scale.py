"""fan10k and huge: one wide workflow of trivial steps, for throughput and the scheduler's memory.

The scheduler runs inside the all-in-one server, so its memory is the server
process's: peak RSS is its VmHWM. huge runs the same shape at several node
counts, a fresh server each, and fits memory growth ~ nodes^k: k < 1 means
the state lives in the store rather than in memory.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config, manifests
from bench.context import Context
from bench.observe import Outcome, done_steps, run_workflow, total_steps
from bench.procfs import MIB
from bench.results import Figure, WorkloadResult
from bench.server import TreadleServer
from bench.workloads.common import outcome_json, warm_server

SAMPLE_INTERVAL = 2.0
# huge judges completion and memory; speed is fan10k's target. Each size gets the time 200 steps/s
# would need, plus a margin, so that a stalled engine ends the run (the figures then say how far it
# got) instead of holding the suite for an hour.
HUGE_STEPS_PER_SECOND_ALLOWED = 200.0
HUGE_MARGIN_SECONDS = 30.0
# The growth exponent is fitted only when the largest run created at least this many times the nodes of the smallest.
MIN_NODE_SPREAD = 2.0


@dataclass
class ScaleRun:
    nodes: int
    outcome: Outcome
    # The server's VmHWM after the warm-up workflow, before this one was submitted.
    baseline_peak_mib: float
    usage: dict[str, Any]
    rss_timeline: list[tuple[float, float]] = field(default_factory=list)

    @property
    def peak_mib(self) -> float:
        return float(self.usage["server_peak_rss_mib"])

    @property
    def growth_mib(self) -> float:
        return max(self.peak_mib - self.baseline_peak_mib, 0.0)

    @property
    def steps_done(self) -> int:
        if self.outcome.succeeded:
            return self.nodes
        return done_steps(self.outcome.progress) or 0

    @property
    def nodes_created(self) -> int:
        """The step nodes that existed at the end: all of them, or as many as the engine had made when it stopped."""
        if self.outcome.succeeded:
            return self.nodes
        return total_steps(self.outcome.progress) or 0

    @property
    def steps_per_second(self) -> float:
        return self.steps_done / self.outcome.seconds if self.outcome.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            **outcome_json(self.outcome),
            "submit_error": self.outcome.submit_error,
            "steps_done": self.steps_done,
            "nodes_created": self.nodes_created,
            "steps_per_second": round(self.steps_per_second, 1),
            "baseline_peak_rss_mib": round(self.baseline_peak_mib, 1),
            "growth_mib": round(self.growth_mib, 1),
            **self.usage,
            "rss_timeline": [[round(t, 1), round(m, 1)] for t, m in self.rss_timeline],
        }


async def run_wide(nodes: int, timeout: float, profile: Path | None) -> ScaleRun:
    """A DAG of `nodes` independent steps on a fresh warmed-up server."""
    async with warm_server(profile) as (server, client):
        baseline = server.usage().server.peak_mib
        timeline: list[tuple[float, float]] = []
        sampler = asyncio.create_task(_sample_rss(server, timeline))
        try:
            name = f"fan{nodes}-{uuid.uuid4().hex[:6]}"
            manifest = manifests.text(manifests.named(manifests.fan(nodes, fan_in=False), name))
            outcome = await run_workflow(client, manifest, timeout=timeout, observer="poll")
        finally:
            sampler.cancel()
        run = ScaleRun(nodes, outcome, baseline, server.usage().as_json(), timeline)
        if not outcome.succeeded:
            run.usage["server_log_tail"] = server.log_tail()
        return run


async def _sample_rss(server: TreadleServer, timeline: list[tuple[float, float]]) -> None:
    started = time.perf_counter()
    while True:
        await asyncio.sleep(SAMPLE_INTERVAL)
        timeline.append((time.perf_counter() - started, server.usage().server.current / MIB))


async def fan10k(ctx: Context) -> WorkloadResult:
    nodes = ctx.sizes.fan10k
    result = WorkloadResult("fan10k", "ok", params={"nodes": nodes, "observer": "poll"})
    run = await run_wide(nodes, ctx.sizes.scale_timeout, ctx.profile_path("fan10k"))
    result.details["run"] = run.as_json()
    if not run.outcome.succeeded:
        result.status = "failed"
        result.notes.append(f"treadle: {run.outcome.describe()}")
    smoke = ctx.smoke
    result.add(Figure("wall_seconds", "wall", run.outcome.seconds if run.outcome.succeeded else None, "s"))
    result.add(
        Figure(
            "steps_per_second",
            "steps per second",
            run.steps_per_second,
            "steps/s",
            target=None if smoke else config.FAN10K_STEPS_PER_SECOND,
        )
    )
    result.add(
        Figure(
            "server_peak_rss_mib",
            "scheduler (server) peak RSS",
            run.peak_mib,
            "MiB",
            target=None if smoke else config.FAN10K_RSS_MIB,
        )
    )
    result.add(
        Figure("executor_host_peak_rss_mib", "executor host peak RSS", run.usage["executor_host_peak_rss_mib"], "MiB")
    )
    return result


async def huge(ctx: Context) -> WorkloadResult:
    sizes = ctx.sizes.huge
    result = WorkloadResult("huge", "ok", params={"sizes": list(sizes), "observer": "poll"})
    runs: list[ScaleRun] = []
    for nodes in sizes:
        timeout = ctx.sizes.scale_timeout if ctx.smoke else HUGE_MARGIN_SECONDS + nodes / HUGE_STEPS_PER_SECOND_ALLOWED
        run = await run_wide(nodes, timeout, ctx.profile_path(f"huge-{nodes}"))
        runs.append(run)
        if not run.outcome.succeeded:
            result.notes.append(f"{nodes} nodes: {run.outcome.describe()}")
    result.details["runs"] = [run.as_json() for run in runs]
    largest = runs[-1]
    completes = largest.outcome.succeeded
    if not completes:
        result.status = "failed"
    # Memory is judged only once the largest run has all its nodes: a run cut short has made a fraction of them.
    unjudged = ctx.smoke or not completes
    if not completes and not ctx.smoke:
        result.notes.append(
            f"RSS and growth targets not judged: the largest run did not finish "
            f"({largest.nodes_created:,} of {largest.nodes:,} step nodes created)"
        )
    points = [(run.nodes_created, run.growth_mib) for run in runs]
    exponent = growth_exponent(points)
    created = [n for n, _ in points if n > 0]
    if any(not run.outcome.succeeded for run in runs):
        result.notes.append("runs that did not finish count the nodes the engine had created when they stopped")
    if exponent is not None and (len(created) < 2 or max(created) < MIN_NODE_SPREAD * min(created)):
        result.notes.append(f"no growth exponent: the runs created {created} nodes, less than {MIN_NODE_SPREAD}× apart")
        exponent = None
    result.add(Figure("nodes", "nodes (largest run)", float(largest.nodes), "nodes"))
    result.add(
        Figure(
            "completes",
            "completes",
            1.0 if completes else 0.0,
            "yes/no",
            target=None if ctx.smoke else config.HUGE_COMPLETES,
        )
    )
    result.add(Figure("wall_seconds", "wall (largest run)", largest.outcome.seconds if completes else None, "s"))
    result.add(Figure("steps_per_second", "steps per second (largest run)", largest.steps_per_second, "steps/s"))
    result.add(
        Figure(
            "server_peak_rss_mib",
            "scheduler (server) peak RSS, largest run",
            largest.peak_mib,
            "MiB",
            target=None if unjudged else config.HUGE_RSS_MIB,
        )
    )
    result.add(
        Figure(
            "memory_growth_exponent",
            "memory growth exponent k (RSS growth ~ nodes^k)",
            exponent,
            "k",
            target=None if unjudged else config.HUGE_GROWTH_EXPONENT,
        )
    )
    per_10k = _mib_per_10k_nodes(runs)
    result.add(Figure("growth_mib_per_10k_nodes", "RSS growth per 10k nodes (between the two largest)", per_10k, "MiB"))
    return result


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(growth) against log(nodes); None with fewer than two usable points."""
    usable = [(math.log(n), math.log(growth)) for n, growth in points if n > 0 and growth > 0]
    if len(usable) < 2:
        return None
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread


def _mib_per_10k_nodes(runs: list[ScaleRun]) -> float | None:
    if len(runs) < 2:
        return None
    a, b = runs[-2], runs[-1]
    if b.nodes == a.nodes:
        return None
    return (b.growth_mib - a.growth_mib) / (b.nodes - a.nodes) * 10_000
