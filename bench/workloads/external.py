"""Workloads that live in their own scripts, run as subprocesses: artifacts and tracing overhead.

bench/artifacts.py takes --smoke and prints its figures as one JSON object on
its last line. bench/tracing_overhead.py takes --steps and --rounds and prints
a summary in words, read here line by line (a JSON line, should it print one,
is preferred). A script that does not exist yet leaves its workload out
(status skipped), as the issue asks, rather than faking it.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.results import Figure, Target, WorkloadResult

BENCH_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FigureSpec:
    key: str
    label: str
    unit: str
    target: Target | None = None


@dataclass(frozen=True)
class Script:
    workload: str
    path: Path
    full_args: tuple[str, ...]
    smoke_args: tuple[str, ...]
    # Which keys of its JSON become figures; with none, every top-level number does.
    figures: tuple[FigureSpec, ...]
    full_timeout: float
    smoke_timeout: float = 120.0


ARTIFACTS = Script(
    workload="artifacts",
    path=BENCH_DIR / "artifacts.py",
    full_args=(),  # a full run records its own section of bench/README.md
    smoke_args=("--smoke",),
    figures=(
        FigureSpec("ratio_round_trip", "round trip vs direct minio client", "×", Target(">=", 0.5, "≥ 0.5× direct")),
        FigureSpec("service_peak_rss_growth_mb", "service peak RSS growth", "MB", Target("<=", 100.0, "≤ 100 MB")),
        FigureSpec("service_up_mb_s", "upload through the service", "MB/s"),
        FigureSpec("service_down_mb_s", "download through the service", "MB/s"),
        FigureSpec("direct_up_mb_s", "upload, minio client direct", "MB/s"),
        FigureSpec("direct_down_mb_s", "download, minio client direct", "MB/s"),
    ),
    full_timeout=900.0,
)

TRACING = Script(
    workload="tracing",
    path=BENCH_DIR / "tracing_overhead.py",
    full_args=(),
    smoke_args=("--steps", "3", "--rounds", "1"),
    figures=(
        FigureSpec("off_ms_per_step", "chain, tracing off", "ms/step"),
        FigureSpec("on_ms_per_step", "chain, tracing on (OTLP/gRPC)", "ms/step"),
        FigureSpec("overhead_percent", "rise in per-step overhead, wall", "%", Target("<", 10.0, "< 10%")),
        FigureSpec("cpu_off_ms_per_step", "CPU per step, tracing off", "ms/step"),
        FigureSpec("cpu_on_ms_per_step", "CPU per step, tracing on", "ms/step"),
        FigureSpec("cpu_overhead_percent", "rise in per-step overhead, CPU", "%"),
    ),
    full_timeout=900.0,
)


async def artifacts(ctx: Context) -> WorkloadResult:
    return await run_script(ARTIFACTS, ctx)


async def tracing(ctx: Context) -> WorkloadResult:
    return await run_script(TRACING, ctx)


async def run_script(script: Script, ctx: Context) -> WorkloadResult:
    result = WorkloadResult(script.workload, "ok", params={"script": str(script.path.relative_to(BENCH_DIR.parent))})
    if not script.path.exists():
        result.status = "skipped"
        result.notes.append(f"{result.params['script']} does not exist yet; this workload is left out")
        return result
    args = list(script.smoke_args if ctx.smoke else script.full_args)
    timeout = script.smoke_timeout if ctx.smoke else script.full_timeout
    started = time.perf_counter()
    done = await asyncio.to_thread(_run, [sys.executable, str(script.path), *args], timeout)
    result.details["seconds"] = round(time.perf_counter() - started, 2)
    if done is None:
        result.status = "failed"
        result.notes.append(f"did not finish within {timeout:g}s")
        return result
    data = _last_json_line(done.stdout) or _tracing_summary(done.stdout)
    if data is None:
        # The script ran; with exit 0 only its output's shape is new to the suite, which is not a failure.
        result.status = "ok" if done.returncode == 0 else "failed"
        said = f"stdout: {done.stdout.strip()[-300:]} stderr: {done.stderr.strip()[-500:]}".replace("\n", " | ")
        result.notes.append(f"exit {done.returncode}; printed no figures the suite can read; {said}")
        return result
    result.details["output"] = data
    if done.returncode != 0:
        result.notes.append(f"the script exited {done.returncode} (it does so when its own targets are missed)")
    specs = script.figures or tuple(
        FigureSpec(key, key.replace("_", " "), "")
        for key, value in data.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    )
    for spec in specs:
        value = data.get(spec.key)
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None and spec.key not in data:
            continue  # a figure this version of the script does not print
        result.add(Figure(spec.key, spec.label, number, spec.unit, target=None if ctx.smoke else spec.target))
    return result


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=BENCH_DIR.parent
        )
    except subprocess.TimeoutExpired:
        return None


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return data
    return None


_NUMBER = r"([-+]?[\d.]+)"
# tracing_overhead.py's closing summary, in the shapes it has printed: "wall per step: tracing off X ms,
# on Y ms: ... P% ..." with a CPU line of the same shape (the first percentage on a line is the overhead),
# or one figure per line.
_SUMMARY_SHAPES: tuple[dict[str, re.Pattern[str]], ...] = (
    {
        "off_ms_per_step": re.compile(rf"wall per step: tracing off\s*{_NUMBER} ms"),
        "on_ms_per_step": re.compile(rf"wall per step: tracing off\s*[-+\d.]+ ms, on\s*{_NUMBER} ms"),
        "overhead_percent": re.compile(rf"wall per step:[^\n]*?{_NUMBER}%"),
        "cpu_off_ms_per_step": re.compile(rf"CPU\s+per step: tracing off\s*{_NUMBER} ms"),
        "cpu_on_ms_per_step": re.compile(rf"CPU\s+per step: tracing off\s*[-+\d.]+ ms, on\s*{_NUMBER} ms"),
        "cpu_overhead_percent": re.compile(rf"CPU\s+per step:[^\n]*?{_NUMBER}%"),
    },
    {
        "off_ms_per_step": re.compile(rf"tracing off\s*:\s*{_NUMBER} ms/step"),
        "on_ms_per_step": re.compile(rf"tracing on\s*:\s*{_NUMBER} ms/step"),
        "overhead_percent": re.compile(rf"overhead\s*:[^\n]*?\({_NUMBER}%"),
    },
)


def _tracing_summary(stdout: str) -> dict[str, Any] | None:
    """The figures of tracing_overhead.py's closing summary, from the first shape whose every line is there."""
    for shape in _SUMMARY_SHAPES:
        found = {key: pattern.search(stdout) for key, pattern in shape.items()}
        if all(found.values()):
            return {key: float(match.group(1)) for key, match in found.items() if match is not None}
    return None
