"""The CLI's live progress (submit --watch, run) and the span waterfall of `get --trace`."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from treadle.client.progress import ProgressView
from treadle.client.waterfall import waterfall_lines
from treadle.workflow.v1 import workflow_pb2 as wf

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def ts(seconds: float) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(T0 + timedelta(seconds=seconds))
    return out


def workflow(done: bool) -> wf.Workflow:
    w = wf.Workflow()
    w.metadata.name = "demo"
    w.status.phase = wf.WORKFLOW_PHASE_SUCCEEDED if done else wf.WORKFLOW_PHASE_RUNNING
    w.status.progress = "2/2" if done else "1/2"
    w.status.started_at.CopyFrom(ts(0))
    if done:
        w.status.finished_at.CopyFrom(ts(4))
    root = w.status.nodes["demo"]
    root.id, root.name, root.display_name, root.type = "demo", "demo", "demo", wf.NODE_TYPE_DAG
    root.phase = w.status.phase if done else wf.NODE_PHASE_RUNNING
    root.started_at.CopyFrom(ts(0))
    root.children.extend(["a", "b"])
    for node_id, start, end in (("a", 0.1, 1.0), ("b", 1.0, 4.0 if done else None)):
        node = w.status.nodes[node_id]
        node.id, node.name, node.display_name, node.type = node_id, f"demo.{node_id}", node_id, wf.NODE_TYPE_POD
        node.template_name = "step"
        node.started_at.CopyFrom(ts(start))
        node.phase = wf.NODE_PHASE_SUCCEEDED if end is not None else wf.NODE_PHASE_RUNNING
        if end is not None:
            node.finished_at.CopyFrom(ts(end))
    if done:
        root.finished_at.CopyFrom(ts(4))
    return w


def test_the_waterfall_puts_every_node_on_one_time_axis() -> None:
    lines = waterfall_lines(workflow(done=True), width=40)
    assert lines[0].split()[:3] == ["STEP", "START", "DURATION"]
    assert "|0s" in lines[0] and "4.0s|" in lines[0]
    rows = {line.split()[1]: line for line in lines[1:]}
    bar_a = rows["a"][rows["a"].index("|") + 1 : rows["a"].rindex("|")]
    bar_b = rows["b"][rows["b"].index("|") + 1 : rows["b"].rindex("|")]
    assert len(bar_a) == len(bar_b) == 40
    # a: 0.1 s to 1.0 s of 4 s; b: 1.0 s to 4.0 s, so it starts where a ends and runs to the end.
    assert bar_a.index("█") == 1 and bar_a.count("█") == 9
    assert bar_b.index("█") == 10 and bar_b.rstrip().endswith("█") and len(bar_b.rstrip()) == 40
    assert "+100ms" in rows["a"] and "3.0s" in rows["b"]


def test_a_running_node_runs_to_now() -> None:
    lines = waterfall_lines(workflow(done=False), now=T0 + timedelta(seconds=2), width=20)
    row_b = next(line for line in lines if " b " in line)
    assert "1.0s" in row_b
    assert row_b.rstrip().endswith("█|")


def test_piped_progress_is_one_line_per_phase_change() -> None:
    out = io.StringIO()
    view = ProgressView(out, live=False)
    view.update(workflow(done=False))
    view.update(workflow(done=False))  # nothing changed: nothing written
    view.update(workflow(done=True))
    view.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[2:4] for line in lines] == [
        ["demo", "Running"],
        ["a", "Succeeded"],
        ["b", "Running"],
        ["demo", "Succeeded"],
        ["b", "Succeeded"],
    ]
    assert lines[1].split()[1] == "[1/2]" and lines[1].endswith("900ms")
    assert "\x1b" not in out.getvalue()


def test_live_progress_redraws_in_place() -> None:
    async def main() -> str:
        out = io.StringIO()
        view = ProgressView(out, live=True)
        view.update(workflow(done=False))
        view.update(workflow(done=True))
        view.close()
        return out.getvalue()

    text = asyncio.run(main())
    frames = text.split("\x1b[")
    first = frames[0].splitlines()
    assert first[0].startswith("demo  Running  1/2")
    assert any("● b" in line for line in first)
    # The second frame moves up over the first (its line count) and clears before drawing.
    assert text.count(f"\x1b[{len(first)}F\x1b[J") == 2  # redraw, then the erase on close
    assert "demo  Succeeded  2/2  4.0s" in text
