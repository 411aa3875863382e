"""bench/run (python -m bench): run workloads, print the table, write the JSON and the chart."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import machine, readme, report
from bench.context import Context
from bench.peers import venv
from bench.results import WorkloadResult
from bench.workloads import external, scale, throughput, versus

Workload = Callable[[Context], Awaitable[WorkloadResult]]

WORKLOADS: dict[str, Workload] = {
    "chain200": versus.chain200,
    "fan1000": versus.fan1000,
    "fan10k": scale.fan10k,
    "huge": scale.huge,
    "admission": throughput.admission,
    "e2e": throughput.e2e,
    "artifacts": external.artifacts,
    "tracing": external.tracing,
}
ALL = "all"
PEERS_SETUP = "peers-setup"
# Measures nothing: prints the table and redraws the chart and the README section from the JSON.
REPORT = "report"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="treadle's benchmark suite: workloads on treadle and on Snakemake and Prefect, side by side.",
        epilog="Exit status: 0 when every workload ran (targets missed or not), 1 when one could not run to its end.",
    )
    p.add_argument(
        "what",
        nargs="+",
        choices=[ALL, PEERS_SETUP, REPORT, *WORKLOADS],
        metavar="WHAT",
        help=(
            f"{ALL}, {PEERS_SETUP} (create bench/.venv-peers), {REPORT} (show and redraw the last results), "
            f"or workloads: {', '.join(WORKLOADS)}"
        ),
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, no targets judged; writes smoke.json, not latest")
    p.add_argument("--no-peers", action="store_true", help="measure treadle alone")
    p.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample every treadle server with py-spy into DIR (raw stacks and a summary per server)",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON and PNG go (bench/results)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for alone in (PEERS_SETUP, REPORT):
        if alone in args.what and len(args.what) > 1:
            parser().error(f"{alone} runs alone")
    if args.what == [PEERS_SETUP]:
        return venv.setup()
    if args.what == [REPORT]:
        return show(args)
    names = list(WORKLOADS) if ALL in args.what else list(dict.fromkeys(args.what))
    ctx = Context.create(smoke=args.smoke, peers=not args.no_peers, profile_dir=args.profile)
    if ctx.peers_skipped:
        print(f"note: peers skipped: {ctx.peers_skipped}", flush=True)
    doc = asyncio.run(run_suite(names, ctx))
    stem = "smoke" if args.smoke else "latest"
    json_path = args.results_dir / f"{stem}.json"
    if not args.smoke and ALL not in args.what:
        doc = report.merge_into(json_path, doc)
    report.write_json(json_path, doc)
    print()
    print(report.heading(doc))
    print(report.table(doc))
    if text := report.notes(doc):
        print(text)
    print(f"\nwrote {json_path}")
    if not args.smoke and args.results_dir.resolve() == RESULTS_DIR and readme.update(doc):
        print(f"updated the results section of {readme.README}")
    if not args.no_chart:
        draw(doc, args.results_dir / f"{stem}.png")
    failed = [name for name in names if doc["workloads"][name]["status"] == "failed"]
    if failed:
        print(f"could not run to the end: {', '.join(failed)}")
    return 1 if failed else 0


def show(args: argparse.Namespace) -> int:
    stem = "smoke" if args.smoke else "latest"
    json_path = args.results_dir / f"{stem}.json"
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"bench: no results to show in {json_path}: {exc}")
        return 1
    print(report.heading(doc))
    print(report.table(doc))
    if text := report.notes(doc):
        print(text)
    if not args.smoke and args.results_dir.resolve() == RESULTS_DIR and readme.update(doc):
        print(f"updated the results section of {readme.README}")
    if not args.no_chart:
        draw(doc, args.results_dir / f"{stem}.png")
    return 0


async def run_suite(names: list[str], ctx: Context) -> dict[str, Any]:
    started, began = report.now_utc(), time.perf_counter()
    described, code = machine.describe(), machine.git_revision()  # as the run starts: others may commit meanwhile
    peers: dict[str, Any] = {"skipped": ctx.peers_skipped}
    if ctx.peers:
        peers = {"versions": await asyncio.to_thread(venv.installed_versions)}
    results = []
    for name in names:
        print(f"== {name}{' (smoke)' if ctx.smoke else ''}", flush=True)
        result = await run_one(name, ctx)
        status = result.status if not result.notes else f"{result.status}; {'; '.join(result.notes)}"
        print(f"   {status} ({result.elapsed_seconds:.1f}s)", flush=True)
        results.append(result)
    return report.document(
        mode="smoke" if ctx.smoke else "full",
        machine=described,
        code=code,
        peers=peers,
        results=results,
        started=started,
        seconds=time.perf_counter() - began,
    )


async def run_one(name: str, ctx: Context) -> WorkloadResult:
    began = time.perf_counter()
    try:
        result = await WORKLOADS[name](ctx)
    except Exception as exc:
        result = WorkloadResult(name, "failed", notes=[f"{type(exc).__name__}: {exc}"])
        result.details["traceback"] = traceback.format_exc()
    result.elapsed_seconds = time.perf_counter() - began
    return result


def draw(doc: dict[str, Any], path: Path) -> None:
    try:
        from bench import chart
    except ImportError as exc:
        print(f"note: no chart: {exc.name} is not installed (pip install -e '.[bench]')")
        return
    chart.draw(doc, path)
    print(f"wrote {path}")
