"""The results document (JSON) and the table printed at the end of a run."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from bench.machine import load_average, summary
from bench.results import WorkloadResult

SCHEMA = 1
PEER_NAMES = ("snakemake", "prefect")

# Argo Workflows' published figures (sources in bench/README.md), shown beside treadle's.
ARGO_REFERENCE = {
    ("chain200", "overhead_ms_per_step"): "Argo ~4,000-10,000 ms",
    ("fan10k", "steps_per_second"): "Argo ~4.5 pods/s (defaults)",
    ("huge", "completes"): "Argo: cannot (etcd ~1 MB object)",
    ("e2e", "per_minute"): "Argo ≤ 2,100/min (5 controllers, 50 nodes)",
}


def now_utc() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def document(
    *,
    mode: str,
    machine: dict[str, Any],
    code: dict[str, Any],
    peers: dict[str, Any],
    results: list[WorkloadResult],
    started: str,
    seconds: float,
) -> dict[str, Any]:
    workloads = {}
    for result in results:
        data = result.as_json()
        data["date"] = started
        data["commit"] = code.get("commit")
        for figure in result.figures:
            reference = ARGO_REFERENCE.get((result.name, figure.name))
            if reference:
                data["figures"][figure.name]["argo"] = reference
        workloads[result.name] = data
    return {
        "schema": SCHEMA,
        "mode": mode,
        "date": started,
        "machine": {**machine, "load_average_at_end": load_average()},
        "code": code,
        "peers": peers,
        "suite_seconds": round(seconds, 1),
        "workloads": workloads,
    }


def merge_into(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """doc, plus the workloads of the document at path that this run did not measure (same mode only)."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return doc
    if previous.get("schema") != SCHEMA or previous.get("mode") != doc["mode"]:
        return doc
    kept = {name: data for name, data in previous.get("workloads", {}).items() if name not in doc["workloads"]}
    return {**doc, "workloads": {**kept, **doc["workloads"]}}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    partial.replace(path)


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "yes/no":
        return "yes" if value else "no"
    magnitude = abs(value)
    if magnitude >= 100 or (magnitude >= 10 and float(value).is_integer()):
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip() if unit else text


def met_text(fig: dict[str, Any], status: str, *, no: str = "NO") -> str:
    """yes / NO for a judged figure; NO as well when the workload did not finish and so has no value."""
    met = fig.get("met")
    if met is None and fig.get("target") and status == "failed":
        return f"{no} (did not finish)"
    return {True: "yes", False: no, None: ""}[met]


def table(doc: dict[str, Any]) -> str:
    """Every figure beside its target and the peers' same figure."""
    header = ["workload", "figure", "treadle", "target", "met", "snakemake", "prefect", "reference"]
    rows: list[list[str]] = []
    for name, data in doc["workloads"].items():
        if not data["figures"]:
            rows.append([name, f"({data['status']}; see notes)", "", "", "", "", "", ""])
            continue
        for fig in data["figures"].values():
            target, peers, unit = fig.get("target"), fig.get("peers") or {}, fig["unit"]
            rows.append(
                [
                    name,
                    fig["label"],
                    number(fig["value"], unit),
                    target["text"] if target else "",
                    met_text(fig, data["status"]),
                    *(number(peers.get(peer), unit) if peer in peers else "" for peer in PEER_NAMES),
                    fig.get("argo", ""),
                ]
            )
            name = ""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
    return "\n".join(lines)


def heading(doc: dict[str, Any]) -> str:
    peers = doc["peers"]
    peer_text = (
        ", ".join(f"{name} {version}" for name, version in peers["versions"].items())
        if "versions" in peers
        else f"peers skipped: {peers.get('skipped')}"
    )
    return (
        f"treadle bench ({doc['mode']}), {doc['date']}, {summary(doc['machine'])}\n"
        f"load average at start {doc['machine']['load_average_at_start']}, at end "
        f"{doc['machine']['load_average_at_end']}; {peer_text}"
    )


def notes(doc: dict[str, Any]) -> str:
    lines = [f"  {name}: {note}" for name, data in doc["workloads"].items() for note in data["notes"]]
    return "notes:\n" + "\n".join(lines) if lines else ""
