"""The "Latest results" section of bench/README.md, rewritten from the results document after a full run.

Only the text between the two markers changes; every other section (the
artifacts benchmark writes its own) is left as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.machine import summary
from bench.report import PEER_NAMES, met_text, number

README = Path(__file__).resolve().parent / "README.md"
BEGIN = "<!-- bench-results: replaced from bench/results/latest.json -->"
END = "<!-- /bench-results -->"


def section(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    peers = doc["peers"]
    versions = ", ".join(f"{name} {version}" for name, version in (peers.get("versions") or {}).items())
    code = doc["code"]
    by_date: dict[str, list[str]] = {}
    for name, data in doc["workloads"].items():
        by_date.setdefault(str(data.get("date", doc["date"])), []).append(name)
    runs = "; ".join(f"{', '.join(names)} from the run of {date}" for date, names in sorted(by_date.items()))
    lines = [
        f"{runs}." if len(by_date) > 1 else f"Run of {doc['date']}.",
        f"Machine: {summary(machine)}; load average {machine['load_average_at_start']} at the "
        f"start and {machine['load_average_at_end']} at the end (the machine is shared). "
        f"Commit {str(code.get('commit') or '?')[:10]}{' with local changes' if code.get('dirty') else ''}; "
        f"peers: {versions or peers.get('skipped')}. The last run took {doc['suite_seconds'] / 60:.0f} minutes.",
        "",
        "| workload | figure | treadle | target | met | Snakemake | Prefect | Argo (published) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, data in doc["workloads"].items():
        if not data["figures"]:
            lines.append(f"| {name} | ({data['status']}) | | | | | | |")
        for fig in data["figures"].values():
            target, peers_values, unit = fig.get("target"), fig.get("peers") or {}, fig["unit"]
            cells = [
                name,
                fig["label"],
                number(fig["value"], unit),
                target["text"] if target else "",
                met_text(fig, data["status"], no="**no**"),
                *(number(peers_values.get(p), unit) if p in peers_values else "" for p in PEER_NAMES),
                fig.get("argo", ""),
            ]
            lines.append("| " + " | ".join(cells) + " |")
            name = ""
    notes = [f"- {name}: {note}" for name, data in doc["workloads"].items() for note in data["notes"]]
    if notes:
        lines += ["", "Notes from the run:", "", *(note.replace("\n", " ")[:400] for note in notes)]
    return "\n".join(lines)


def update(doc: dict[str, Any], path: Path = README) -> bool:
    """Rewrite the section; False (and nothing written) when the README has no markers."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    start, end = text.find(BEGIN), text.find(END)
    if start == -1 or end < start:
        return False
    path.write_text(text[: start + len(BEGIN)] + "\n" + section(doc) + "\n" + text[end:])
    return True
