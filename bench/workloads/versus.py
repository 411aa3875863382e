"""chain200 and fan1000: one workflow on treadle, Snakemake and Prefect, the same `sh -c` per step.

Each tool is timed two ways:
- warm: the workflow alone, the tool already up. treadle: SubmitWorkflow to the final
  phase on a running `treadle serve all` that has run one workflow before. Prefect: the
  flow call after a one-task flow started its ephemeral server. Snakemake has no
  long-lived process: its wall time minus the wall time of a one-step Snakefile.
- cold: the whole process, what a user waits for at the prompt: `treadle run FILE`
  (every service started in-process), `snakemake`, `python flows.py`.
The targets' ratios compare warm with warm; the cold ratios are reported beside them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from bench import config, manifests
from bench.commands import chain_answer, fan_answer
from bench.context import Context
from bench.observe import node_result, run_workflow
from bench.peers import prefect_peer, snakemake_peer
from bench.results import Figure, PeerRun, WorkloadResult, peer_run_json
from bench.workloads.common import outcome_json, treadle_run, warm_server

Shape = Literal["chain", "fan"]
PEERS = ("snakemake", "prefect")


@dataclass(frozen=True)
class Shaped:
    shape: Shape
    size: int

    @property
    def manifest(self) -> str:
        return manifests.text(manifests.chain(self.size) if self.shape == "chain" else manifests.fan(self.size))

    @property
    def answer(self) -> str:
        return str(chain_answer(self.size) if self.shape == "chain" else fan_answer(self.size))

    @property
    def answer_node(self) -> str:
        return f"s{self.size - 1}" if self.shape == "chain" else "sum"

    @property
    def steps(self) -> int:
        return self.size if self.shape == "chain" else self.size + 1


async def chain200(ctx: Context) -> WorkloadResult:
    return await _versus("chain200", Shaped("chain", ctx.sizes.chain), ctx)


async def fan1000(ctx: Context) -> WorkloadResult:
    return await _versus("fan1000", Shaped("fan", ctx.sizes.fan), ctx)


async def _versus(name: str, work: Shaped, ctx: Context) -> WorkloadResult:
    result = WorkloadResult(name, "ok", params={"shape": work.shape, "size": work.size, "steps": work.steps})
    timeout = ctx.sizes.timeout
    async with warm_server(ctx.profile_path(name)) as (server, client):
        outcome = await run_workflow(client, work.manifest, timeout=timeout, observer="watch")
        result.details["treadle_server"] = {**outcome_json(outcome), **server.usage().as_json()}
        if not outcome.succeeded:
            result.details["server_log_tail"] = server.log_tail()
    got = node_result(outcome.workflow, work.answer_node) if outcome.workflow else None
    if not outcome.succeeded or got != work.answer:
        result.status = "failed"
        result.notes.append(f"treadle: {outcome.describe()}; answer {got!r}, expected {work.answer}")
    cold_seconds = await _treadle_run(work, ctx, result)

    peers = await _run_peers(work, ctx, result)
    warm = outcome.seconds if outcome.succeeded else None
    _figures(result, work, ctx, warm, cold_seconds, peers, await ctx.bare_step_seconds())
    return result


async def _treadle_run(work: Shaped, ctx: Context, result: WorkloadResult) -> float | None:
    """`treadle run FILE`, timed; left out in smoke mode, where its seconds of start-up are most of the run."""
    if ctx.smoke:
        return None
    cold = await asyncio.to_thread(treadle_run, work.manifest, timeout=ctx.sizes.timeout)
    result.details["treadle_run"] = {"ok": cold.ok, "wall_seconds": round(cold.wall_seconds, 3), "error": cold.error}
    if not cold.ok:
        result.notes.append(f"treadle run: {cold.error}")
        return None
    return cold.wall_seconds


async def _run_peers(work: Shaped, ctx: Context, result: WorkloadResult) -> dict[str, PeerRun]:
    if not ctx.peers:
        result.notes.append(f"peers skipped: {ctx.peers_skipped}")
        return {}
    timeout = ctx.sizes.timeout
    if work.shape == "chain":
        snakefile, answer_file = snakemake_peer.chain_snakefile(work.size), f"chain/{work.size - 1}.txt"
    else:
        snakefile, answer_file = snakemake_peer.fan_snakefile(work.size), "sum.txt"
    runs: dict[str, PeerRun] = {}
    snake = await asyncio.to_thread(snakemake_peer.run, snakefile, answer_file, timeout=timeout)
    startup = await ctx.snakemake_startup_seconds()
    if snake.ok and snake.wall_seconds is not None and startup is not None:
        snake.warm_seconds = max(0.0, snake.wall_seconds - startup)
    runs["snakemake"] = snake
    runs["prefect"] = await asyncio.to_thread(prefect_peer.run, work.shape, work.size, timeout=timeout)
    for peer, run in runs.items():
        if run.ok and run.answer != work.answer:
            runs[peer] = PeerRun.failed(f"answered {run.answer!r}, expected {work.answer}")
        if not runs[peer].ok:
            result.notes.append(f"{peer}: {runs[peer].error}")
    result.details["peers"] = {peer: peer_run_json(run) for peer, run in runs.items()}
    result.details["snakemake_startup_seconds"] = startup
    return runs


def _figures(
    result: WorkloadResult,
    work: Shaped,
    ctx: Context,
    warm: float | None,
    cold: float | None,
    peers: dict[str, PeerRun],
    bare: float,
) -> None:
    def peer_values(attr: str, per: float = 1.0, minus: float = 0.0) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        for peer in PEERS:
            run = peers.get(peer)
            raw: Any = getattr(run, attr) if run is not None and run.ok else None
            values[peer] = None if raw is None else raw / per - minus
        return values

    smoke = ctx.smoke
    result.details["bare_step_ms"] = round(bare * 1000, 3)
    result.add(Figure("wall_seconds", "wall (warm)", warm, "s", peers=peer_values("warm_seconds")))
    result.add(Figure("cold_wall_seconds", "wall (cold process)", cold, "s", peers=peer_values("wall_seconds")))
    if work.shape == "chain":
        per_step = None if warm is None else warm / work.steps * 1000
        overhead = None if per_step is None else per_step - bare * 1000
        result.add(
            Figure(
                "overhead_ms_per_step",
                "overhead per step",
                overhead,
                "ms",
                target=None if smoke else config.CHAIN_OVERHEAD_MS,
                peers=peer_values("warm_seconds", per=work.steps / 1000, minus=bare * 1000),
            )
        )
        speedup_target = config.CHAIN_SPEEDUP
    else:
        result.figures[0].target = None if smoke else config.FAN_WALL_SECONDS
        speedup_target = config.FAN_SPEEDUP
    warm_peers = [v for v in peer_values("warm_seconds").values() if v is not None]
    cold_peers = [v for v in peer_values("wall_seconds").values() if v is not None]
    speedup = min(warm_peers) / warm if warm and warm_peers else None
    cold_speedup = min(cold_peers) / cold if cold and cold_peers else None
    result.add(
        Figure(
            "speedup_vs_faster_peer",
            "speed-up vs the faster peer (warm)",
            speedup,
            "×",
            target=None if smoke else speedup_target,
        )
    )
    result.add(Figure("cold_speedup_vs_faster_peer", "speed-up vs the faster peer (cold)", cold_speedup, "×"))
    server = result.details.get("treadle_server", {})
    result.add(Figure("server_peak_rss_mib", "server peak RSS", server.get("server_peak_rss_mib"), "MiB"))
