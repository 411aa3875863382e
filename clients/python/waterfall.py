"""`treadle get WF --trace`: where the time went, as a span waterfall drawn from the stored timings.

    STEP          START  DURATION  |0s                    1.6s                   3.2s|
     ✔ traced     +0ms   3.2s      |█████████████████████████████████████████████|
     ├─✔ make     +14ms  1.1s      |███████████████                              |
     └─✔ use      +1.2s  2.0s      |                █████████████████████████████|

Each node's bar runs from its start to its end (to now while it runs), on one
time axis for the whole workflow. It needs no tracing backend: the node start
and finish times in the workflow's status are enough.
"""

from __future__ import annotations

from datetime import UTC, datetime

from treadle.client.render import MARKERS, short_duration, span, tree_rows
from treadle.workflow.v1 import workflow_pb2 as wf_pb

BAR_WIDTH = 48


def waterfall_lines(workflow: wf_pb.Workflow, *, now: datetime | None = None, width: int = BAR_WIDTH) -> list[str]:
    """One row per node: tree, offset from the workflow's start, duration, and a bar on the common axis."""
    now = now or datetime.now(UTC)
    status = workflow.status
    if not status.HasField("started_at"):
        return ["the workflow has not started yet"]
    origin = status.started_at.ToDatetime(tzinfo=UTC)
    total = max(span(status.started_at, status.finished_at if status.HasField("finished_at") else None, now) or 0, 1e-3)
    rows: list[tuple[str, str, str, str]] = []
    for prefix, node in tree_rows(status.nodes):
        label = f"{prefix}{MARKERS.get(node.phase, '?')} {node.display_name or node.name}"
        if not node.HasField("started_at"):
            rows.append((label, "", "", "|" + " " * width + "|"))
            continue
        start = (node.started_at.ToDatetime(tzinfo=UTC) - origin).total_seconds()
        finished = node.finished_at if node.HasField("finished_at") else None
        duration = span(node.started_at, finished, now) or 0.0
        rows.append((label, f"+{short_duration(start)}", short_duration(duration), _bar(start, duration, total, width)))
    axis = f"|0s{short_duration(total / 2).center(width - 4 - len(short_duration(total)))}{short_duration(total)}|"
    table = [("STEP", "START", "DURATION", axis), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    return ["  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)) for row in table]


def _bar(start: float, duration: float, total: float, width: int) -> str:
    first = min(width - 1, max(0, int(start / total * width)))
    length = max(1, min(width - first, round(duration / total * width)))
    return "|" + " " * first + "█" * length + " " * (width - first - length) + "|"
