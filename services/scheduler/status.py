"""Engine records -> treadle.workflow.v1 status messages."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from treadle.services.scheduler.engine.model import Node, NodePhase, NodeType, WorkflowState
from treadle.services.scheduler.large_values import without_inline_values
from treadle.workflow.v1 import workflow_pb2 as wf

NODE_PHASES = {
    NodePhase.PENDING: wf.NODE_PHASE_PENDING,
    NodePhase.RUNNING: wf.NODE_PHASE_RUNNING,
    NodePhase.SUCCEEDED: wf.NODE_PHASE_SUCCEEDED,
    NodePhase.FAILED: wf.NODE_PHASE_FAILED,
    NodePhase.ERROR: wf.NODE_PHASE_ERROR,
    NodePhase.SKIPPED: wf.NODE_PHASE_SKIPPED,
    NodePhase.OMITTED: wf.NODE_PHASE_OMITTED,
}
PHASE_NAMES = {v: k for k, v in NODE_PHASES.items()}
WORKFLOW_PHASES = {
    NodePhase.PENDING: wf.WORKFLOW_PHASE_PENDING,
    NodePhase.RUNNING: wf.WORKFLOW_PHASE_RUNNING,
    NodePhase.SUCCEEDED: wf.WORKFLOW_PHASE_SUCCEEDED,
    NodePhase.FAILED: wf.WORKFLOW_PHASE_FAILED,
    NodePhase.ERROR: wf.WORKFLOW_PHASE_ERROR,
}
NODE_TYPES = {
    NodeType.POD: wf.NODE_TYPE_POD,
    NodeType.STEPS: wf.NODE_TYPE_STEPS,
    NodeType.STEP_GROUP: wf.NODE_TYPE_STEP_GROUP,
    NodeType.DAG: wf.NODE_TYPE_DAG,
    NodeType.SKIPPED: wf.NODE_TYPE_SKIPPED,
    NodeType.TASK_GROUP: wf.NODE_TYPE_TASK_GROUP,
    NodeType.RETRY: wf.NODE_TYPE_RETRY,
    NodeType.SUSPEND: wf.NODE_TYPE_SUSPEND,
}


def timestamp(ts: float | None) -> Timestamp | None:
    if ts is None:
        return None
    out = Timestamp()
    out.FromNanoseconds(int(ts * 1e9))
    return out


def workflow_status(state: WorkflowState, nodes: Iterable[Node] = ()) -> wf.WorkflowStatus:
    status = wf.WorkflowStatus(
        phase=WORKFLOW_PHASES.get(state.phase, wf.WORKFLOW_PHASE_UNSPECIFIED),
        message=state.message,
        progress=state.progress,
        started_at=timestamp(state.started_at),
        finished_at=timestamp(state.finished_at),
    )
    if state.outputs:
        json_format.ParseDict(without_inline_values(state.outputs), status.outputs)
    for node in nodes:
        status.nodes[node.id].CopyFrom(_cached_node_status(state.name, node))
    return status


# Node messages of running workflows, reused until their node changes: a watch sends every node
# in every event, and most of them have not changed since the last one.
_NODE_CACHE: OrderedDict[tuple[str, str], tuple[int, wf.NodeStatus]] = OrderedDict()
_NODE_CACHE_SIZE = 50_000


def _cached_node_status(workflow: str, node: Node) -> wf.NodeStatus:
    if node.rev == 0:  # loaded from storage: no revision to trust
        return node_status(node)
    key = (workflow, node.id)
    hit = _NODE_CACHE.get(key)
    if hit is not None and hit[0] == node.rev:
        _NODE_CACHE.move_to_end(key)
        return hit[1]
    msg = node_status(node)
    _NODE_CACHE[key] = (node.rev, msg)
    _NODE_CACHE.move_to_end(key)
    if len(_NODE_CACHE) > _NODE_CACHE_SIZE:
        _NODE_CACHE.popitem(last=False)
    return msg


def node_status(node: Node) -> wf.NodeStatus:
    msg = wf.NodeStatus(
        id=node.id,
        name=node.name,
        display_name=node.display_name,
        type=NODE_TYPES[node.type],
        phase=NODE_PHASES[node.phase],
        template_name=node.template_name,
        boundary_id=node.boundary_id,
        children=node.children,
        started_at=timestamp(node.started_at),
        finished_at=timestamp(node.finished_at),
        message=node.message,
        attempt=node.attempt,
        pod_name=node.pod_name,
    )
    if node.inputs.get("parameters") or node.inputs.get("artifacts"):
        json_format.ParseDict(without_inline_values(node.inputs), msg.inputs, ignore_unknown_fields=True)
    if node.outputs:
        # A large value is sent as its reference only, so that watch events stay small (large_values.py).
        json_format.ParseDict(without_inline_values(node.outputs), msg.outputs, ignore_unknown_fields=True)
    memo = node.progress.get("memoize")
    if memo:
        msg.memoization_status.CopyFrom(
            wf.MemoizationStatus(hit=bool(memo.get("hit")), key=memo.get("key", ""), cache_name=memo.get("cache", ""))
        )
    if node.progress.get("daemoned"):  # engine/daemons.py
        msg.daemoned = not node.done
        msg.pod_ip = str(node.progress.get("ip", ""))
    return msg
