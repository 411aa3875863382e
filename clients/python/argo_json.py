"""The JSON shape `argo get -o json` prints, built from a treadle Workflow message.

Argo writes phases and node types as words ("Succeeded", "StepGroup"), steps
as a list of lists, timestamps as RFC 3339 in whole seconds, and leaves out
empty fields. Tools written against Argo's output can read treadle's.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from treadle.spec.convert import spec_to_dict
from treadle.templates.v1.templates_pb2 import WorkflowTemplate
from treadle.workflow.v1 import workflow_pb2 as wf_pb

WORKFLOW_PHASES: dict[wf_pb.WorkflowPhase.ValueType, str] = {
    wf_pb.WORKFLOW_PHASE_PENDING: "Pending",
    wf_pb.WORKFLOW_PHASE_RUNNING: "Running",
    wf_pb.WORKFLOW_PHASE_SUCCEEDED: "Succeeded",
    wf_pb.WORKFLOW_PHASE_FAILED: "Failed",
    wf_pb.WORKFLOW_PHASE_ERROR: "Error",
}
NODE_PHASES: dict[wf_pb.NodePhase.ValueType, str] = {
    wf_pb.NODE_PHASE_PENDING: "Pending",
    wf_pb.NODE_PHASE_RUNNING: "Running",
    wf_pb.NODE_PHASE_SUCCEEDED: "Succeeded",
    wf_pb.NODE_PHASE_FAILED: "Failed",
    wf_pb.NODE_PHASE_ERROR: "Error",
    wf_pb.NODE_PHASE_SKIPPED: "Skipped",
    wf_pb.NODE_PHASE_OMITTED: "Omitted",
}
NODE_TYPES: dict[wf_pb.NodeType.ValueType, str] = {
    wf_pb.NODE_TYPE_POD: "Pod",
    wf_pb.NODE_TYPE_STEPS: "Steps",
    wf_pb.NODE_TYPE_STEP_GROUP: "StepGroup",
    wf_pb.NODE_TYPE_DAG: "DAG",
    wf_pb.NODE_TYPE_SKIPPED: "Skipped",
    wf_pb.NODE_TYPE_TASK_GROUP: "TaskGroup",
    wf_pb.NODE_TYPE_RETRY: "Retry",
    wf_pb.NODE_TYPE_SUSPEND: "Suspend",
}
FINAL_WORKFLOW_PHASES = frozenset(
    {wf_pb.WORKFLOW_PHASE_SUCCEEDED, wf_pb.WORKFLOW_PHASE_FAILED, wf_pb.WORKFLOW_PHASE_ERROR}
)


def workflow_phase_from_name(word: str) -> wf_pb.WorkflowPhase.ValueType | None:
    """The phase for Argo's word (any case), or None when there is no such phase."""
    for phase, name in WORKFLOW_PHASES.items():
        if name.lower() == word.strip().lower():
            return phase
    return None


def workflow_phase_name(phase: wf_pb.WorkflowPhase.ValueType) -> str:
    """Argo's word for a workflow phase; "" when unset."""
    return WORKFLOW_PHASES.get(phase, "")


def node_phase_name(phase: wf_pb.NodePhase.ValueType) -> str:
    return NODE_PHASES.get(phase, "")


def node_type_name(node_type: wf_pb.NodeType.ValueType) -> str:
    return NODE_TYPES.get(node_type, "")


def timestamp_text(ts: Timestamp) -> str:
    """RFC 3339 in whole seconds, UTC, as Kubernetes' metav1.Time prints it."""
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def workflow_to_argo_json(workflow: wf_pb.Workflow) -> dict[str, Any]:
    """The dict `argo get -o json` would print for this workflow."""
    return {
        "metadata": metadata_json(workflow.metadata),
        "spec": spec_to_dict(workflow.spec),
        "status": status_json(workflow.status),
    }


def template_to_argo_json(template: WorkflowTemplate) -> dict[str, Any]:
    """A WorkflowTemplate as a manifest dict: what `argo template get -o json` prints, and `template update` reads."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": metadata_json(template.metadata),
        "spec": spec_to_dict(template.spec),
    }


def metadata_json(meta: wf_pb.ObjectMeta) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "name", meta.name)
    _put(out, "generateName", meta.generate_name)
    _put(out, "namespace", meta.namespace)
    _put(out, "uid", meta.uid)
    _put(out, "resourceVersion", meta.resource_version)
    if meta.HasField("creation_timestamp"):
        out["creationTimestamp"] = timestamp_text(meta.creation_timestamp)
    _put(out, "labels", dict(sorted(meta.labels.items())))
    _put(out, "annotations", dict(sorted(meta.annotations.items())))
    return out


def status_json(status: wf_pb.WorkflowStatus) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "phase", workflow_phase_name(status.phase))
    if status.HasField("started_at"):
        out["startedAt"] = timestamp_text(status.started_at)
    if status.HasField("finished_at"):
        out["finishedAt"] = timestamp_text(status.finished_at)
    _put(out, "progress", status.progress)
    _put(out, "message", status.message)
    ordered = sorted(status.nodes.values(), key=_node_order)
    _put(out, "nodes", {node.id: node_json(node) for node in ordered})
    if status.HasField("outputs"):
        _put(out, "outputs", _message_json(status.outputs))
    return out


def node_json(node: wf_pb.NodeStatus) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "id", node.id)
    _put(out, "name", node.name)
    _put(out, "displayName", node.display_name)
    _put(out, "type", node_type_name(node.type))
    _put(out, "templateName", node.template_name)
    _put(out, "phase", node_phase_name(node.phase))
    _put(out, "boundaryID", node.boundary_id)
    _put(out, "message", node.message)
    if node.HasField("started_at"):
        out["startedAt"] = timestamp_text(node.started_at)
    if node.HasField("finished_at"):
        out["finishedAt"] = timestamp_text(node.finished_at)
    if node.HasField("inputs"):
        _put(out, "inputs", _message_json(node.inputs))
    if node.HasField("outputs"):
        _put(out, "outputs", _message_json(node.outputs))
        if node.outputs.HasField("exit_code"):
            # Newer Argo versions also surface the exit code on the node itself.
            out["exitCode"] = node.outputs.exit_code
    _put(out, "children", list(node.children))
    return out


def _message_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _node_order(node: wf_pb.NodeStatus) -> tuple[int, int, str]:
    started = node.started_at.ToNanoseconds() if node.HasField("started_at") else 0
    return (0 if node.HasField("started_at") else 1, started, node.name)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set key unless value is empty, which Argo's JSON leaves out."""
    if value:
        out[key] = value
