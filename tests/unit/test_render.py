"""treadle.client.render: the argo-get header and node tree, the list table, durations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_argo_json import node, sample_workflow, ts

from treadle.client.render import long_duration, node_tree_lines, short_duration, workflow_summary, workflow_table
from treadle.workflow.v1 import workflow_pb2 as wf_pb

NOW = datetime(2025, 3, 4, 5, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.3401, "340ms"), (2.54, "2.5s"), (42.9, "42s"), (185, "3m5s"), (120, "2m"), (3720, "1h2m"), (93600, "1d2h")],
)
def test_short_duration(seconds: float, text: str) -> None:
    assert short_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2.54, "2.5 seconds"), (1, "1 second"), (61, "1 minute 1 second"), (7322, "2 hours 2 minutes")],
)
def test_long_duration(seconds: float, text: str) -> None:
    assert long_duration(seconds) == text


def test_header_lists_status_message_duration_progress() -> None:
    text = workflow_summary(sample_workflow(), now=NOW, tree=False)
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "demo-x1y2z"]
    assert "Status:              Failed" in lines
    assert "Message:             step a failed: exit code 3" in lines
    assert "Duration:            8.0 seconds" in lines
    assert "Progress:            1/2" in lines
    assert "STEP" not in text


def test_tree_marks_phases_and_indents_steps() -> None:
    wf = sample_workflow()
    steps = wf.status.nodes["demo-x1y2z"]
    steps.children.append("g1")
    group = node("g1", display_name="[1]", type=wf_pb.NODE_TYPE_STEP_GROUP, children=["b", "c"])
    wf.status.nodes["g1"].CopyFrom(group)
    wf.status.nodes["c"].CopyFrom(
        node(
            "c",
            display_name="c",
            type=wf_pb.NODE_TYPE_POD,
            phase=wf_pb.NODE_PHASE_SUCCEEDED,
            template_name="echo",
            pod_name="demo-c",
            started_at=ts(2),
            finished_at=ts(5),
        )
    )
    lines = node_tree_lines(wf, now=NOW)
    assert lines[0].split() == ["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"]
    assert lines[1].startswith(" ✖ demo-x1y2z")
    assert lines[2].startswith(" ├───✖ a") and "demo-x1y2z-a" in lines[2] and lines[2].endswith("exit code 3")
    assert lines[3].startswith(" └─┬─◷ b")
    assert lines[4].startswith("   └─✔ c") and "demo-c" in lines[4] and "3.0s" in lines[4]
    assert len(lines) == 5  # step groups are not rows of their own


def test_dag_tasks_hang_off_the_dag_node() -> None:
    wf = wf_pb.Workflow()
    wf.metadata.name = "d"
    nodes = [
        node("d", display_name="d", type=wf_pb.NODE_TYPE_DAG, phase=wf_pb.NODE_PHASE_SUCCEEDED, children=["a", "b"]),
        node("a", display_name="A", type=wf_pb.NODE_TYPE_POD, phase=wf_pb.NODE_PHASE_SUCCEEDED, boundary_id="d"),
        node("b", display_name="B", type=wf_pb.NODE_TYPE_RETRY, phase=wf_pb.NODE_PHASE_RUNNING, boundary_id="d"),
        node("b0", display_name="B(0)", type=wf_pb.NODE_TYPE_POD, phase=wf_pb.NODE_PHASE_FAILED, boundary_id="d"),
        node("b1", display_name="B(1)", type=wf_pb.NODE_TYPE_POD, phase=wf_pb.NODE_PHASE_RUNNING, boundary_id="d"),
    ]
    nodes[2].children.extend(["b0", "b1"])
    for n in nodes:
        wf.status.nodes[n.id].CopyFrom(n)
    lines = node_tree_lines(wf, now=NOW)
    assert [line.split()[0:2] for line in lines[1:]] == [
        ["✔", "d"],
        ["├─✔", "A"],
        ["└─●", "B"],
        ["├─✖", "B(0)"],
        ["└─●", "B(1)"],
    ]
    assert lines[4].startswith("   ├─✖ B(0)")


def test_list_table() -> None:
    lines = workflow_table([sample_workflow()], now=NOW)
    assert lines[0].split() == ["NAME", "STATUS", "AGE", "DURATION", "PROGRESS", "MESSAGE"]
    assert lines[1].split()[:5] == ["demo-x1y2z", "Failed", "59s", "8.0s", "1/2"]
