"""Text views of workflows, laid out like `argo get` and `argo list`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from treadle.client.argo_json import workflow_phase_name
from treadle.workflow.v1 import workflow_pb2 as wf_pb

MARKERS: dict[wf_pb.NodePhase.ValueType, str] = {
    wf_pb.NODE_PHASE_SUCCEEDED: "✔",
    wf_pb.NODE_PHASE_FAILED: "✖",
    wf_pb.NODE_PHASE_ERROR: "⚠",
    wf_pb.NODE_PHASE_SKIPPED: "○",
    wf_pb.NODE_PHASE_OMITTED: "○",
    wf_pb.NODE_PHASE_RUNNING: "●",
    wf_pb.NODE_PHASE_PENDING: "◷",
}
_LABEL_WIDTH = 21


# -- durations --------------------------------------------------------------------


def short_duration(seconds: float) -> str:
    """Compact, for table cells: 340ms, 2.5s, 42s, 3m5s, 1h2m, 2d3h."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60}s" if whole % 60 else f"{whole // 60}m"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60}m" if whole % 3600 // 60 else f"{whole // 3600}h"
    return f"{whole // 86400}d{whole % 86400 // 3600}h"


def long_duration(seconds: float) -> str:
    """Spelled out, for the header: "2.5 seconds", "3 minutes 5 seconds"."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} seconds" if seconds != 1 else "1 second"
    whole = int(seconds)
    parts: list[str] = []
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return " ".join(parts[:2])


def _moment(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def span(started: Timestamp | None, finished: Timestamp | None, now: datetime) -> float | None:
    """Seconds from started to finished (or to now while running); None when not started."""
    if started is None:
        return None
    end = _moment(finished) if finished is not None else now
    return (end - _moment(started)).total_seconds()


def _started(holder: wf_pb.WorkflowStatus | wf_pb.NodeStatus) -> Timestamp | None:
    return holder.started_at if holder.HasField("started_at") else None


def _finished(holder: wf_pb.WorkflowStatus | wf_pb.NodeStatus) -> Timestamp | None:
    return holder.finished_at if holder.HasField("finished_at") else None


# -- argo get ---------------------------------------------------------------------


def workflow_summary(workflow: wf_pb.Workflow, *, now: datetime | None = None, tree: bool = True) -> str:
    """The header of `argo get` and, when there are nodes, the node tree."""
    now = now or datetime.now(UTC)
    text = "\n".join(_header_lines(workflow, now))
    if tree and workflow.status.nodes:
        text += "\n\n" + "\n".join(node_tree_lines(workflow, now=now))
    return text


def _header_lines(workflow: wf_pb.Workflow, now: datetime) -> Iterable[str]:
    meta, status = workflow.metadata, workflow.status

    def line(label: str, value: str) -> str:
        return f"{label + ':':<{_LABEL_WIDTH}}{value}"

    yield line("Name", meta.name)
    yield line("Namespace", meta.namespace or "default")
    yield line("Status", workflow_phase_name(status.phase) or "Pending")
    if status.message:
        yield line("Message", status.message)
    if meta.HasField("creation_timestamp"):
        yield line("Created", _when(meta.creation_timestamp, now))
    if status.HasField("started_at"):
        yield line("Started", _when(status.started_at, now))
    if status.HasField("finished_at"):
        yield line("Finished", _when(status.finished_at, now))
    elapsed = span(_started(status), _finished(status), now)
    if elapsed is not None:
        yield line("Duration", long_duration(elapsed))
    if status.progress:
        yield line("Progress", status.progress)
    parameters = workflow.spec.arguments.parameters
    if parameters:
        yield "Parameters:"
        for p in parameters:
            yield line(f"  {p.name}", p.value)
    if status.outputs.parameters:
        yield "Outputs:"
        for p in status.outputs.parameters:
            yield line(f"  {p.name}", p.value)


def _when(ts: Timestamp, now: datetime) -> str:
    moment = _moment(ts)
    return f"{moment.strftime('%a %b %d %H:%M:%S %z')} ({short_duration((now - moment).total_seconds())} ago)"


@dataclass(frozen=True)
class _Row:
    prefix: str
    node: wf_pb.NodeStatus


def tree_rows(nodes: Mapping[str, wf_pb.NodeStatus]) -> list[tuple[str, wf_pb.NodeStatus]]:
    """The nodes in `argo get` order, each with its tree-drawing prefix (├─, └─, │ ...)."""
    rows: list[_Row] = []
    for root in _roots(nodes):
        rows.append(_Row(" ", root))
        _add_children(nodes, root, " ", rows)
    return [(row.prefix, row.node) for row in rows]


def node_tree_lines(workflow: wf_pb.Workflow, *, now: datetime | None = None) -> list[str]:
    """STEP / TEMPLATE / PODNAME / DURATION / MESSAGE rows with ✔ ✖ ○ ● markers."""
    now = now or datetime.now(UTC)
    rows = [_Row(prefix, node) for prefix, node in tree_rows(workflow.status.nodes)]
    table = [("STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE")]
    for row in rows:
        node = row.node
        marker = MARKERS.get(node.phase, "?")
        is_pod = node.type == wf_pb.NODE_TYPE_POD
        elapsed = span(_started(node), _finished(node), now) if is_pod else None
        table.append(
            (
                f"{row.prefix}{marker} {node.display_name or node.name}",
                node.template_name,
                node.pod_name if is_pod else "",
                short_duration(elapsed) if elapsed is not None else "",
                node.message,
            )
        )
    return _columns(table)


def _roots(nodes: Mapping[str, wf_pb.NodeStatus]) -> list[wf_pb.NodeStatus]:
    """Nodes nobody lists as a child and no other node owns (normally just the workflow's own node)."""
    owned = {child for node in nodes.values() for child in node.children}
    roots = [n for n in nodes.values() if n.id not in owned and n.boundary_id not in nodes]
    return sorted(roots, key=lambda n: n.name)


def _add_children(nodes: Mapping[str, wf_pb.NodeStatus], node: wf_pb.NodeStatus, prefix: str, rows: list[_Row]) -> None:
    children = _children(nodes, node)
    if node.type == wf_pb.NODE_TYPE_STEPS:
        # A steps node's children are its parallel groups; a group is not a row of its own.
        groups = [_children(nodes, c) if c.type == wf_pb.NODE_TYPE_STEP_GROUP else [c] for c in children]
        for index, group in enumerate(groups):
            _add_group(nodes, group, prefix, index == len(groups) - 1, rows)
        return
    for index, child in enumerate(children):
        last = index == len(children) - 1
        rows.append(_Row(prefix + ("└─" if last else "├─"), child))
        _add_children(nodes, child, prefix + ("  " if last else "│ "), rows)


def _add_group(
    nodes: Mapping[str, wf_pb.NodeStatus],
    group: list[wf_pb.NodeStatus],
    prefix: str,
    last_group: bool,
    rows: list[_Row],
) -> None:
    """One parallel group of a steps node: ├─── for a lone step, ├─┬─ and │ └─ for several."""
    rail = "  " if last_group else "│ "
    for index, step in enumerate(group):
        if len(group) == 1:
            connector, below = ("└───" if last_group else "├───"), rail + "  "
        elif index == 0:
            connector, below = ("└─┬─" if last_group else "├─┬─"), rail + "│ "
        else:
            last_step = index == len(group) - 1
            connector = rail + ("└─" if last_step else "├─")
            below = rail + ("  " if last_step else "│ ")
        rows.append(_Row(prefix + connector, step))
        _add_children(nodes, step, prefix + below, rows)


def _children(nodes: Mapping[str, wf_pb.NodeStatus], node: wf_pb.NodeStatus) -> list[wf_pb.NodeStatus]:
    return [nodes[child] for child in node.children if child in nodes]


# -- argo list --------------------------------------------------------------------


def workflow_table(workflows: Iterable[wf_pb.Workflow], *, now: datetime | None = None) -> list[str]:
    """NAME / STATUS / AGE / DURATION / PROGRESS / MESSAGE rows."""
    now = now or datetime.now(UTC)
    table = [("NAME", "STATUS", "AGE", "DURATION", "PROGRESS", "MESSAGE")]
    for wf in workflows:
        meta, status = wf.metadata, wf.status
        age = (now - _moment(meta.creation_timestamp)).total_seconds() if meta.HasField("creation_timestamp") else None
        elapsed = span(_started(status), _finished(status), now)
        table.append(
            (
                meta.name,
                workflow_phase_name(status.phase) or "Pending",
                short_duration(age) if age is not None else "",
                short_duration(elapsed) if elapsed is not None else "",
                status.progress,
                status.message,
            )
        )
    return _columns(table)


def _columns(table: Sequence[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
