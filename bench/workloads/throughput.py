"""admission and e2e: many small workflows from concurrent clients, each with its own channel.

admission times SubmitWorkflow alone, with the state store durable (SQLite WAL,
synchronous=FULL: every admitted workflow is fsynced before the call returns).
The workflows it submits are one-step workflows held with `spec.suspend: true`
(Argo's submit-on-hold), so the figure is the admission path (validation, the
durable insert, the hand-off to the scheduler, which loads and stores each one)
and not the steps; e2e measures running them.

e2e keeps 16 one-step workflows in flight: each client submits one, watches it
to its end, and submits the next, for a fixed window.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import config, manifests
from bench.context import Context
from bench.observe import run_workflow
from bench.results import Figure, WorkloadResult
from bench.server import TreadleServer
from bench.workloads.common import warm_server
from treadle.client import TreadleClient
from treadle.store.sqlite import open_database


def percentile(samples: list[float], pct: float) -> float | None:
    """The pct-th percentile (inclusive method); None without samples."""
    if not samples:
        return None
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(pct) - 1]


def store_durability() -> dict[str, Any]:
    """What treadle's SQLite helper sets, read back from a connection it opened."""
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as scratch:
        conn = open_database(Path(scratch) / "probe.db")
        try:
            synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": journal, "synchronous": names.get(synchronous, str(synchronous))}


def held_single_step() -> str:
    manifest = manifests.single_step("admitted")
    manifest["spec"]["suspend"] = True
    return manifests.text(manifest)


async def admission(ctx: Context) -> WorkloadResult:
    clients, per_client = ctx.sizes.admission_clients, ctx.sizes.admission_per_client
    durability = store_durability()
    result = WorkloadResult(
        "admission",
        "ok",
        params={"clients": clients, "submissions": clients * per_client, "workflow": "one step, held", **durability},
    )
    if durability["synchronous"] != "FULL":
        result.notes.append(f"the store is not fsync-durable here: synchronous={durability['synchronous']}")
    manifest = held_single_step()
    async with warm_server(ctx.profile_path("admission")) as (server, _):
        latencies, errors, seconds = await _submit_from(server, clients, per_client, manifest)
        result.details["server"] = server.usage().as_json()
    if errors:
        result.status = "failed"
        result.notes.append(f"{len(errors)} submissions failed, first: {errors[0]}")
    done = len(latencies)
    smoke = ctx.smoke
    rate = done / seconds if seconds > 0 else None
    p99 = percentile(latencies, 99)
    result.details["latency_ms"] = {
        "p50": _ms(percentile(latencies, 50)),
        "p90": _ms(percentile(latencies, 90)),
        "p99": _ms(p99),
        "max": _ms(max(latencies, default=None)),
    }
    result.add(
        Figure(
            "per_second", "submissions per second", rate, "wf/s", target=None if smoke else config.ADMISSION_PER_SECOND
        )
    )
    result.add(Figure("p99_ms", "p99 latency", _ms(p99), "ms", target=None if smoke else config.ADMISSION_P99_MS))
    result.add(Figure("p50_ms", "p50 latency", _ms(percentile(latencies, 50)), "ms"))
    return result


async def _submit_from(
    server: TreadleServer, clients: int, per_client: int, manifest: str
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    start = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(TreadleClient(server.address)) for _ in range(clients)]
        for client in opened:  # connect every channel before the clock starts
            await client.lint(manifest)

        async def submit_all(client: TreadleClient) -> None:
            await start.wait()
            for _ in range(per_client):
                began = time.perf_counter()
                try:
                    await client.submit(manifest)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - began)

        tasks = [asyncio.create_task(submit_all(client)) for client in opened]
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - began
    return latencies, errors, seconds


async def e2e(ctx: Context) -> WorkloadResult:
    in_flight, window = ctx.sizes.e2e_in_flight, ctx.sizes.e2e_seconds
    result = WorkloadResult("e2e", "ok", params={"in_flight": in_flight, "window_seconds": window, "observer": "watch"})
    manifest = manifests.text(manifests.single_step("e2e"))
    durations: list[float] = []
    failures: list[str] = []
    async with warm_server(ctx.profile_path("e2e")) as (server, _):
        async with contextlib.AsyncExitStack() as stack:
            opened = [await stack.enter_async_context(TreadleClient(server.address)) for _ in range(in_flight)]

            async def keep_one_in_flight(client: TreadleClient) -> None:
                while True:
                    outcome = await run_workflow(client, manifest, timeout=ctx.sizes.timeout, observer="watch")
                    if outcome.succeeded:
                        durations.append(outcome.seconds)
                    else:
                        failures.append(outcome.describe())

            tasks = [asyncio.create_task(keep_one_in_flight(client)) for client in opened]
            began = time.perf_counter()
            await asyncio.wait(tasks, timeout=window)
            elapsed = time.perf_counter() - began
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        result.details["server"] = server.usage().as_json()
    if failures:
        result.status = "failed"
        result.notes.append(f"{len(failures)} workflows did not succeed, first: {failures[0]}")
    per_minute = len(durations) / elapsed * 60 if elapsed > 0 else None
    result.details["completed"] = len(durations)
    result.details["workflow_seconds"] = {"p50": percentile(durations, 50), "p99": percentile(durations, 99)}
    result.add(
        Figure(
            "per_minute",
            "one-step workflows per minute",
            per_minute,
            "wf/min",
            target=None if ctx.smoke else config.E2E_PER_MINUTE,
        )
    )
    result.add(Figure("p50_seconds", "p50 submit-to-done", percentile(durations, 50), "s"))
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
