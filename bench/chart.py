"""bench/results/latest.png: treadle against its peers, its targets and Argo's published figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: draw to a file

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.machine import summary
from bench.report import number

TOOLS = ("treadle", "snakemake", "prefect")
COLOURS = {"treadle": "#2a7ab0", "snakemake": "#7a9a3a", "prefect": "#c0703a", "argo": "#999999"}
# Argo's published figures (bench/README.md has the sources).
ARGO_STEP_OVERHEAD_MS = (4_000.0, 10_000.0)
ARGO_PODS_PER_SECOND = 4.5
ARGO_WORKFLOWS_PER_MINUTE = 2_100.0


def _figure(doc: dict[str, Any], workload: str, name: str) -> dict[str, Any]:
    figure: dict[str, Any] = doc["workloads"].get(workload, {}).get("figures", {}).get(name, {})
    return figure


def _value(doc: dict[str, Any], workload: str, name: str) -> float:
    value = _figure(doc, workload, name).get("value")
    return float(value) if value is not None else 0.0


def _tool_values(doc: dict[str, Any], workload: str, name: str) -> list[float | None]:
    """treadle's figure and each peer's, in TOOLS order; None where not measured."""
    figure = _figure(doc, workload, name)
    peers = figure.get("peers") or {}
    values = [figure.get("value"), *(peers.get(tool) for tool in TOOLS[1:])]
    return [float(v) if v is not None else None for v in values]


def _label_bars(ax: Axes, bars: Any, values: list[float | None] | None = None) -> None:
    """Each bar's value above it; "n/a" where values says it was not measured."""
    for i, bar in enumerate(bars):
        measured = values is None or values[i] is not None
        height = bar.get_height()
        text = number(height) if measured else "n/a"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom", fontsize=7)


def _bars(values: list[float | None], floor: float = 0.0) -> list[float]:
    return [floor if v is None else max(v, floor) for v in values]


def _versus_panel(ax: Axes, doc: dict[str, Any], workload: str) -> None:
    warm = _tool_values(doc, workload, "wall_seconds")
    cold = _tool_values(doc, workload, "cold_wall_seconds")
    xs = range(len(TOOLS))
    colours = [COLOURS[t] for t in TOOLS]
    _label_bars(ax, ax.bar([x - 0.2 for x in xs], _bars(warm), 0.4, color=colours, label="warm"), warm)
    cold_bars = ax.bar([x + 0.2 for x in xs], _bars(cold), 0.4, color=colours, alpha=0.45, hatch="//", label="cold")
    _label_bars(ax, cold_bars, cold)
    ax.set_xticks(list(xs), list(TOOLS))
    ax.set_ylabel("seconds (lower is better)")
    ax.set_title(f"{workload}: wall time, warm | cold process")
    target = _figure(doc, workload, "wall_seconds").get("target")
    if target:
        ax.axhline(target["bound"], color="red", linestyle="--", linewidth=0.8, label=f"target {target['text']}")
    ax.legend(fontsize=7)


def _overhead_panel(ax: Axes, doc: dict[str, Any]) -> None:
    values = _tool_values(doc, "chain200", "overhead_ms_per_step")
    labels = [*TOOLS, "argo\n(published)"]
    colours = [*(COLOURS[t] for t in TOOLS), COLOURS["argo"]]
    low, high = ARGO_STEP_OVERHEAD_MS
    bars = ax.bar(labels, [*_bars(values, floor=0.1), high], color=colours)
    bars[-1].set_alpha(0.4)
    ax.bar(labels[-1:], [low], color=COLOURS["argo"])
    _label_bars(ax, bars[:-1], values)
    ax.annotate("4-10 s", (len(TOOLS), high), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.axhline(10, color="red", linestyle="--", linewidth=0.8, label="target < 10 ms")
    ax.set_ylabel("ms per step, log scale")
    ax.set_title("chain200: overhead per step")
    ax.legend(fontsize=7)


def _throughput_panel(ax: Axes, doc: dict[str, Any]) -> None:
    labels = ["fan10k", "huge (largest)", "argo default\n(published)"]
    values = [
        _value(doc, "fan10k", "steps_per_second"),
        _value(doc, "huge", "steps_per_second"),
        ARGO_PODS_PER_SECOND,
    ]
    bars = ax.bar(labels, values, color=[COLOURS["treadle"], COLOURS["treadle"], COLOURS["argo"]])
    _label_bars(ax, bars)
    ax.axhline(500, color="red", linestyle="--", linewidth=0.8, label="target ≥ 500 steps/s")
    ax.set_ylabel("steps per second (higher is better)")
    ax.set_title("scale: steps per second")
    ax.legend(fontsize=7)


def _memory_panel(ax: Axes, doc: dict[str, Any]) -> None:
    huge = doc["workloads"].get("huge", {}).get("details", {}).get("runs", [])
    if huge:
        nodes = [run.get("nodes_created") or run["nodes"] for run in huge]
        peaks = [run["server_peak_rss_mib"] for run in huge]
        ax.plot(nodes, peaks, marker="o", color=COLOURS["treadle"], label="huge runs")
        k = _figure(doc, "huge", "memory_growth_exponent").get("value")
        if k is not None:
            ax.annotate(f"growth ~ nodes^{k:.2f}", (nodes[-1], peaks[-1]), fontsize=7, ha="right", va="bottom")
    fan = _figure(doc, "fan10k", "server_peak_rss_mib").get("value")
    fan10k = doc["workloads"].get("fan10k", {})
    fan_run = fan10k.get("details", {}).get("run", {})
    fan_nodes = fan_run.get("nodes_created") or fan10k.get("params", {}).get("nodes")
    if fan is not None and fan_nodes:
        ax.plot([fan_nodes], [fan], marker="s", linestyle="", color="black", label="fan10k")
    ax.axhline(300, color="orange", linestyle="--", linewidth=0.8, label="fan10k target 300 MB")
    ax.axhline(1024, color="red", linestyle="--", linewidth=0.8, label="huge target 1 GB")
    ax.set_xlabel("step nodes created (all of them when the run finished)")
    ax.set_ylabel("scheduler (server) peak RSS, MiB")
    ax.set_title("scale: scheduler memory")
    ax.legend(fontsize=7)


def _workflows_panel(ax: Axes, doc: dict[str, Any]) -> None:
    labels = ["admission\n(submitted)", "e2e\n(completed)", "argo, 5 ctrl\n50 nodes (pub.)"]
    values = [
        _value(doc, "admission", "per_second") * 60,
        _value(doc, "e2e", "per_minute"),
        ARGO_WORKFLOWS_PER_MINUTE,
    ]
    bars = ax.bar(labels, values, color=[COLOURS["treadle"], COLOURS["treadle"], COLOURS["argo"]])
    _label_bars(ax, bars)
    ax.scatter([0, 1], [60_000, 3_000], marker="_", s=900, color="red", label="targets", zorder=3)
    ax.set_yscale("log")
    ax.set_ylabel("workflows per minute, log scale")
    p99 = _figure(doc, "admission", "p99_ms").get("value")
    ax.set_title("workflows per minute" + (f" (admission p99 {p99:.0f} ms)" if p99 is not None else ""))
    ax.legend(fontsize=7)


def _artifacts_panel(ax: Axes, doc: dict[str, Any]) -> None:
    out = doc["workloads"].get("artifacts", {}).get("details", {}).get("output")
    if not out:
        ax.set_axis_off()
        ax.set_title("artifacts: not run")
        return
    xs = [0, 1]
    direct = [out.get("direct_up_mb_s", 0), out.get("direct_down_mb_s", 0)]
    service = [out.get("service_up_mb_s", 0), out.get("service_down_mb_s", 0)]
    _label_bars(ax, ax.bar([x - 0.2 for x in xs], direct, 0.4, color=COLOURS["argo"], label="minio client direct"))
    _label_bars(ax, ax.bar([x + 0.2 for x in xs], service, 0.4, color=COLOURS["treadle"], label="ArtifactService"))
    ax.set_xticks(xs, ["upload", "download"])
    ax.set_ylabel("MB/s (higher is better)")
    ax.set_title(f"artifacts: {out.get('bytes', 0) / 2**20:,.0f} MiB round trip via S3")
    ax.legend(fontsize=7)


def draw(doc: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    _versus_panel(axes[0][0], doc, "chain200")
    _versus_panel(axes[0][1], doc, "fan1000")
    _overhead_panel(axes[0][2], doc)
    _workflows_panel(axes[0][3], doc)
    _throughput_panel(axes[1][0], doc)
    _memory_panel(axes[1][1], doc)
    _artifacts_panel(axes[1][2], doc)
    axes[1][3].set_axis_off()
    axes[1][3].text(0, 0.5, _caption(doc), fontsize=8, va="center", family="monospace", wrap=True)
    fig.suptitle(f"treadle bench ({doc['mode']}), {doc['date']}: {summary(doc['machine'])}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _caption(doc: dict[str, Any]) -> str:
    peers = doc["peers"]
    versions = peers.get("versions") or {}
    lines = [
        "warm: the workflow alone, tool already up",
        "cold: the whole process (treadle run FILE)",
        "",
        *(f"{name} {version}" for name, version in versions.items()),
        "" if versions else f"peers: {peers.get('skipped')}",
        f"load average: {doc['machine']['load_average_at_start']}",
        f"  -> {doc['machine']['load_average_at_end']}",
        f"commit {str(doc['code'].get('commit') or '?')[:10]}" + (" (dirty)" if doc["code"].get("dirty") else ""),
    ]
    return "\n".join(lines)
