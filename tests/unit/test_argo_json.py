"""treadle.client.argo_json: a Workflow message in the shape `argo get -o json` prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from treadle.client.argo_json import timestamp_text, workflow_to_argo_json
from treadle.spec.convert import workflow_from_dict
from treadle.workflow.v1 import workflow_pb2 as wf_pb

SPEC: dict[str, Any] = {
    "entrypoint": "main",
    "arguments": {"parameters": [{"name": "who", "value": "world"}]},
    "templates": [
        {"name": "main", "steps": [[{"name": "a", "template": "echo"}], [{"name": "b", "template": "echo"}]]},
        {
            "name": "echo",
            "container": {"image": "busybox", "command": ["sh", "-c"], "args": ["echo hi > /tmp/out"]},
            "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}, "globalName": "g"}]},
        },
    ],
}


def ts(second: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(2025, 3, 4, 5, 6, second, 500_000, tzinfo=UTC))
    return stamp


def node(node_id: str, **fields: Any) -> wf_pb.NodeStatus:
    return wf_pb.NodeStatus(id=node_id, **fields)


def sample_workflow() -> wf_pb.Workflow:
    wf = workflow_from_dict({"metadata": {"generateName": "demo-", "labels": {"team": "a"}}, "spec": SPEC})
    wf.metadata.name = "demo-x1y2z"
    wf.metadata.namespace = "default"
    wf.metadata.uid = "0f0e"
    wf.metadata.creation_timestamp.CopyFrom(ts(0))
    status = wf.status
    status.phase = wf_pb.WORKFLOW_PHASE_FAILED
    status.started_at.CopyFrom(ts(1))
    status.finished_at.CopyFrom(ts(9))
    status.message = "step a failed: exit code 3"
    status.progress = "1/2"
    status.outputs.parameters.add(name="g", value="hi")
    nodes = {
        "demo-x1y2z": node(
            "demo-x1y2z",
            name="demo-x1y2z",
            display_name="demo-x1y2z",
            type=wf_pb.NODE_TYPE_STEPS,
            phase=wf_pb.NODE_PHASE_FAILED,
            template_name="main",
            children=["g0"],
            started_at=ts(1),
            finished_at=ts(9),
        ),
        "g0": node(
            "g0",
            name="demo-x1y2z[0]",
            display_name="[0]",
            type=wf_pb.NODE_TYPE_STEP_GROUP,
            phase=wf_pb.NODE_PHASE_FAILED,
            template_name="main",
            boundary_id="demo-x1y2z",
            children=["a"],
            started_at=ts(1),
        ),
        "a": node(
            "a",
            name="demo-x1y2z[0].a",
            display_name="a",
            type=wf_pb.NODE_TYPE_POD,
            phase=wf_pb.NODE_PHASE_FAILED,
            template_name="echo",
            boundary_id="demo-x1y2z",
            message="exit code 3",
            started_at=ts(2),
            finished_at=ts(8),
            pod_name="demo-x1y2z-a",
            outputs=wf_pb.Outputs(parameters=[wf_pb.Parameter(name="out", value="hi")], result="hello", exit_code="3"),
        ),
        "b": node(
            "b",
            name="demo-x1y2z[1].b",
            display_name="b",
            type=wf_pb.NODE_TYPE_POD,
            phase=wf_pb.NODE_PHASE_PENDING,
            template_name="echo",
            boundary_id="demo-x1y2z",
        ),
    }
    for key, value in nodes.items():
        status.nodes[key].CopyFrom(value)
    return wf


def test_top_level_has_metadata_spec_status_only() -> None:
    out = workflow_to_argo_json(sample_workflow())
    assert set(out) == {"metadata", "spec", "status"}
    json.dumps(out)  # plain JSON types only


def test_metadata() -> None:
    meta = workflow_to_argo_json(sample_workflow())["metadata"]
    assert meta == {
        "name": "demo-x1y2z",
        "generateName": "demo-",
        "namespace": "default",
        "uid": "0f0e",
        "labels": {"team": "a"},
        "creationTimestamp": "2025-03-04T05:06:00Z",
    }


def test_spec_keeps_argo_form_with_steps_as_list_of_lists() -> None:
    spec = workflow_to_argo_json(sample_workflow())["spec"]
    assert spec["entrypoint"] == "main"
    assert spec["arguments"] == {"parameters": [{"name": "who", "value": "world"}]}
    steps = spec["templates"][0]["steps"]
    assert steps == [[{"name": "a", "template": "echo"}], [{"name": "b", "template": "echo"}]]
    output = spec["templates"][1]["outputs"]["parameters"][0]
    assert output == {"name": "out", "valueFrom": {"path": "/tmp/out"}, "globalName": "g"}


def test_status_uses_argo_words_and_times() -> None:
    status = workflow_to_argo_json(sample_workflow())["status"]
    assert status["phase"] == "Failed"
    assert status["startedAt"] == "2025-03-04T05:06:01Z"
    assert status["finishedAt"] == "2025-03-04T05:06:09Z"
    assert status["message"] == "step a failed: exit code 3"
    assert status["progress"] == "1/2"
    assert status["outputs"] == {"parameters": [{"name": "g", "value": "hi"}]}


def test_nodes_are_keyed_by_id_with_argo_fields() -> None:
    nodes = workflow_to_argo_json(sample_workflow())["status"]["nodes"]
    assert set(nodes) == {"demo-x1y2z", "g0", "a", "b"}
    assert {n["type"] for n in nodes.values()} == {"Steps", "StepGroup", "Pod"}
    pod = nodes["a"]
    assert pod == {
        "id": "a",
        "name": "demo-x1y2z[0].a",
        "displayName": "a",
        "type": "Pod",
        "templateName": "echo",
        "phase": "Failed",
        "boundaryID": "demo-x1y2z",
        "message": "exit code 3",
        "startedAt": "2025-03-04T05:06:02Z",
        "finishedAt": "2025-03-04T05:06:08Z",
        "outputs": {"parameters": [{"name": "out", "value": "hi"}], "result": "hello", "exitCode": "3"},
        "exitCode": "3",
    }
    assert nodes["demo-x1y2z"]["children"] == ["g0"]
    assert nodes["g0"]["displayName"] == "[0]"


def test_empty_fields_are_left_out() -> None:
    nodes = workflow_to_argo_json(sample_workflow())["status"]["nodes"]
    pending = nodes["b"]
    assert pending["phase"] == "Pending"
    for absent in ("startedAt", "finishedAt", "message", "outputs", "inputs", "children", "exitCode"):
        assert absent not in pending
    assert "boundaryID" not in nodes["demo-x1y2z"]
    assert "finishedAt" not in nodes["g0"]


def test_every_phase_and_type_has_a_word() -> None:
    for phase, word in (
        (wf_pb.NODE_PHASE_SKIPPED, "Skipped"),
        (wf_pb.NODE_PHASE_OMITTED, "Omitted"),
        (wf_pb.NODE_PHASE_ERROR, "Error"),
        (wf_pb.NODE_PHASE_RUNNING, "Running"),
        (wf_pb.NODE_PHASE_SUCCEEDED, "Succeeded"),
    ):
        wf = wf_pb.Workflow()
        wf.status.nodes["n"].CopyFrom(node("n", phase=phase, type=wf_pb.NODE_TYPE_DAG))
        out = workflow_to_argo_json(wf)["status"]["nodes"]["n"]
        assert (out["phase"], out["type"]) == (word, "DAG")
    for wf_phase, word in (
        (wf_pb.WORKFLOW_PHASE_PENDING, "Pending"),
        (wf_pb.WORKFLOW_PHASE_RUNNING, "Running"),
        (wf_pb.WORKFLOW_PHASE_SUCCEEDED, "Succeeded"),
        (wf_pb.WORKFLOW_PHASE_ERROR, "Error"),
    ):
        assert workflow_to_argo_json(wf_pb.Workflow(status=wf_pb.WorkflowStatus(phase=wf_phase)))["status"] == {
            "phase": word
        }


def test_a_fresh_workflow_has_an_empty_status() -> None:
    out = workflow_to_argo_json(wf_pb.Workflow(metadata=wf_pb.ObjectMeta(name="x")))
    assert out == {"metadata": {"name": "x"}, "spec": {}, "status": {}}


def test_inputs_and_artifacts_use_camel_case() -> None:
    wf = wf_pb.Workflow()
    pod = node("p", type=wf_pb.NODE_TYPE_POD, phase=wf_pb.NODE_PHASE_SUCCEEDED)
    pod.inputs.parameters.add(name="x", value="1")
    art = pod.outputs.artifacts.add(name="report", path="/tmp/r.txt", global_name="rep")
    art.stored.key = "wf/p/report.tgz"
    art.stored.archive = "tgz"
    pod.outputs.exit_code = "0"
    wf.status.nodes["p"].CopyFrom(pod)
    out = workflow_to_argo_json(wf)["status"]["nodes"]["p"]
    assert out["inputs"] == {"parameters": [{"name": "x", "value": "1"}]}
    artifact = out["outputs"]["artifacts"][0]
    assert artifact["name"] == "report" and artifact["globalName"] == "rep"
    assert artifact["stored"]["key"] == "wf/p/report.tgz"
    assert out["exitCode"] == out["outputs"]["exitCode"] == "0"


def test_timestamp_text_drops_fractions() -> None:
    assert timestamp_text(ts(7)) == "2025-03-04T05:06:07Z"
