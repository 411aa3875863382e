"""The workflow state machine for Steps and DAG templates.

Events come in (the workflow starts, a pod attempt finished, a timer fired,
a person resumed or stopped the workflow) and decisions go out (launch these
pod attempts, arm these timers, cancel these pods). Work is driven by a queue
of finished nodes: each finished node advances only its parent, and a
finished DAG task looks only at its own dependents, so no event rescans the
graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treadle.errors import FailedPrecondition, InvalidSpec, NotFound
from treadle.services.scheduler.engine.calls import CallsMixin
from treadle.services.scheduler.engine.control import WORKFLOW_DEADLINE, ControlMixin
from treadle.services.scheduler.engine.daemons import DaemonsMixin, is_daemoned
from treadle.services.scheduler.engine.dag import DagIndex, DagMixin
from treadle.services.scheduler.engine.hooks import HooksMixin
from treadle.services.scheduler.engine.model import (
    FINAL_PHASES,
    FULFILLED_OK,
    Decisions,
    Launch,
    Node,
    NodePhase,
    NodeType,
    Timer,
    WorkflowState,
)
from treadle.services.scheduler.engine.nodes import Locks, MemoCache, NodeTable
from treadle.services.scheduler.engine.resolve import Scope
from treadle.services.scheduler.engine.retry import RetryMixin
from treadle.services.scheduler.engine.steps import StepsMixin
from treadle.services.scheduler.engine.sync import SyncMixin
from treadle.services.scheduler.engine.window import DEFAULT_WINDOW, WindowMixin
from treadle.spec.template import UnresolvedReference, references, substitute, substitute_tree


class WorkflowEngine(
    DaemonsMixin, WindowMixin, SyncMixin, HooksMixin, CallsMixin, StepsMixin, DagMixin, RetryMixin, ControlMixin
):
    def __init__(
        self,
        state: WorkflowState,
        spec: dict[str, Any],
        nodes: NodeTable,
        *,
        namespace: str = "default",
        created_at: float | None = None,
        now: Callable[[], float] | None = None,
        memo: MemoCache | None = None,
        locks: Locks | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        kwargs: dict[str, Any] = {"namespace": namespace, "created_at": created_at, "memo": memo, "locks": locks}
        if now is not None:
            kwargs["now"] = now
        super().__init__(state, spec, nodes, **kwargs)
        self._group_indexes: dict[str, dict[str, int]] = {}
        self._dag_indexes: dict[str, DagIndex] = {}
        self._deps_left: dict[tuple[str, str], int] = {}
        self.labels = dict(labels or {})
        self.window = max(1, window)
        self._starved: dict[str, None] | None = None
        self._loop_items: dict[str, list[Any]] = {}
        self.annotations = dict(annotations or {})

    # -- events ---------------------------------------------------------------

    def start(self) -> Decisions:
        """Start the workflow at its entrypoint. Does nothing once started."""
        if self.state.phase != NodePhase.PENDING or self.state.waiting_for_lock:
            return Decisions()
        keys = self._workflow_locks()
        if keys and self.locks is not None:
            blocked = self.locks.try_acquire(keys, self.state.name)
            if blocked:
                self.state.waiting_for_lock = True
                self.state.message = blocked.capitalize()
                return self._drain()
        return self._begin_workflow()

    def _start_when_locked(self) -> None:
        assert self.locks is not None
        blocked = self.locks.try_acquire(self._workflow_locks(), self.state.name)
        if blocked:
            self.state.message = blocked.capitalize()
            return
        self.state.waiting_for_lock = False
        self.state.message = ""
        out = self._begin_workflow()
        self._out.launches += out.launches
        self._out.timers += out.timers
        self._out.cancels += out.cancels

    def _begin_workflow(self) -> Decisions:
        self.state.phase = NodePhase.RUNNING
        self.state.started_at = self.now()
        self.state.suspended = bool(self.spec.get("suspend"))
        if self.spec.get("activeDeadlineSeconds"):
            self._arm(WORKFLOW_DEADLINE, self.state.started_at + float(self.spec["activeDeadlineSeconds"]))
        self._arm_hooks(self.state.name, self.spec.get("hooks") or {}, "")
        call = {
            "name": self.state.name,
            "template": self.spec["entrypoint"],
            "arguments": self.spec.get("arguments") or {},
        }
        scope = Scope(self._global, {}, global_names=self._global_names)
        self._call(self.state.name, self.state.name, call, scope, boundary="", parent="")
        return self._drain()

    def complete_pod(
        self, node_id: str, attempt: int, phase: str, outputs: dict[str, Any], message: str = ""
    ) -> Decisions | None:
        """Record a pod attempt's outcome. None when the attempt is unknown, stale or already done."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD or node.attempt != attempt or node.done:
            return None
        node.outputs = outputs
        self.state.pods_done += 1
        if is_daemoned(node):
            phase = NodePhase.SUCCEEDED  # Argo ignores a daemon's failure once it was up
        self._finish(node, phase, message)
        self._release(node)
        return self._drain()

    def on_timer(self, key: str) -> Decisions:
        if key in self.state.timers and not self.state.done:
            self._fire(key)
        return self._drain()

    def relaunch(self, node_id: str) -> Launch | None:
        """Start a new attempt of an unfinished pod node (after its runtime lost it)."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD or node.done or node.id in self.state.queued:
            return None
        node.attempt += 1
        node.started_at = self.now()
        self.nodes.put(node)
        return Launch(node.id, node.attempt, self._deadline(self.templates[node.template_name], node))

    def unfinished_pods(self) -> list[Node]:
        return [n for n in self.nodes.all() if n.type == NodeType.POD and not n.done]

    def armed_timers(self) -> list[Timer]:
        return [Timer(key, at) for key, at in self.state.timers.items()]

    # -- people and programs ---------------------------------------------------

    def suspend(self) -> None:
        self._require_running("suspend")
        self.state.suspended = True

    def resume(self, selector: str = "") -> Decisions:
        """Resume the workflow and its waiting suspend nodes (or only the one selector names)."""
        self._require_running("resume")
        nodes = self._select_nodes(selector)
        if selector and not nodes:
            raise NotFound("suspended node", selector)
        if not selector:
            self.state.suspended = False
            self._start_queued()
        for node in nodes:
            self.state.timers.pop(node.id, None)
            self._resume_node(node)
        return self._drain()

    def set_node(self, selector: str, parameters: dict[str, str], phase: str = "", message: str = "") -> Decisions:
        """Supply output parameters of a waiting suspend node, and optionally finish it."""
        self._require_running("set a node of")
        nodes = self._select_nodes(selector)
        if not nodes:
            raise NotFound("suspended node", selector)
        for node in nodes:
            declared = {
                p["name"] for p in (self.templates[node.template_name].get("outputs") or {}).get("parameters") or []
            }
            unknown = sorted(set(parameters) - declared)
            if unknown:
                raise InvalidSpec(
                    f"node {node.display_name!r} has no output parameter {unknown[0]!r}", field="parameters"
                )
            node.outputs = {"parameters": self._supplied_outputs(node, parameters)}
            self.nodes.put(node)
            if phase == NodePhase.SUCCEEDED:
                self._resume_node(node)
            elif phase in (NodePhase.FAILED, NodePhase.ERROR):
                self._finish(node, phase, message or f"set to {phase}")
        return self._drain()

    def stop(self, message: str = "") -> Decisions:
        """Fail the workflow now; exit handlers still run."""
        self._require_running("stop")
        self._shut_down("Stop", message or "workflow stopped")
        return self._drain()

    def terminate(self, message: str = "") -> Decisions:
        """Fail the workflow now; exit handlers do not run."""
        self._require_running("terminate")
        self._shut_down("Terminate", message or "workflow terminated")
        return self._drain()

    def retry_failed(self) -> Decisions:
        """Run a finished, unsuccessful workflow again: failed nodes re-run, succeeded ones keep their outputs."""
        if self.state.phase not in (NodePhase.FAILED, NodePhase.ERROR):
            raise FailedPrecondition(
                f"cannot retry workflow {self.state.name!r}: it is {self.state.phase.lower()}, not failed",
                subject=f"workflows/{self.state.name}",
            )
        self._deps_left.clear()
        self._child_sets.clear()
        self._queue_parents = None
        self._starved = None
        self._loop_items.clear()
        for node in list(self.nodes.all()):
            if node.phase not in FULFILLED_OK or node.progress.get("inExit"):
                if node.type == NodeType.POD:
                    self.state.next_attempts[node.id] = node.attempt + 1
                self.nodes.delete(node.id)
        for node in self.nodes.all():
            node.children = [c for c in node.children if self.nodes.get(c) is not None]
        kept_pods = [n for n in self.nodes.all() if n.type == NodeType.POD]
        self.state.pods_total = self.state.pods_done = len(kept_pods)
        self.state.pods_running = 0
        self.state.queued = []
        self.state.timers = {}
        self.state.phase = NodePhase.PENDING
        self.state.finished_at = None
        self.state.message = self.state.main_message = self.state.main_phase = ""
        self.state.exit_node = self.state.shutdown = ""
        return self.start()

    def _require_running(self, verb: str) -> None:
        if self.state.phase in FINAL_PHASES:
            raise FailedPrecondition(
                f"cannot {verb} workflow {self.state.name!r}: it has already {self.state.phase.lower()}",
                subject=f"workflows/{self.state.name}",
            )

    # -- what a pod needs ------------------------------------------------------

    def step_context(self, node_id: str) -> dict[str, Any]:
        """The pod node's template with every tag resolved and its input artifacts' sources attached."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD:
            raise NotFound("step", node_id)
        tmpl = self.templates[node.template_name]
        extra = {"pod.name": node.pod_name, "node.name": node.name}
        if "retries" in node.progress:
            extra["retries"] = str(node.progress["retries"])
        scope = Scope(self._global, node.inputs, extra=extra, global_names=self._global_names)
        body = {k: v for k, v in tmpl.items() if k not in ("name", "inputs", "retryStrategy", "memoize")}
        resolved: dict[str, Any] = substitute_tree(body, scope.lookup)
        resolved["name"] = tmpl["name"]
        artifacts = [
            {**entry, "path": substitute(entry.get("path", ""), scope.lookup)}
            for entry in node.inputs.get("artifacts") or []
        ]
        resolved["inputs"] = {"parameters": node.inputs.get("parameters") or [], "artifacts": artifacts}
        return resolved

    # -- dispatch -------------------------------------------------------------

    def _start_composite(self, node: Node) -> None:
        if node.type == NodeType.STEPS:
            self._start_steps(node)
        elif node.type == NodeType.DAG:
            self._start_dag(node)
        elif node.type == NodeType.SUSPEND:
            self._start_suspend(node)

    def _child_done(self, parent: Node, child: Node) -> None:
        if parent.type in (NodeType.STEP_GROUP, NodeType.TASK_GROUP):
            self._group_child_done(parent, child)
        elif parent.type == NodeType.STEPS:
            self._steps_group_done(parent, child)
        elif parent.type == NodeType.DAG:
            self._dag_child_done(parent, child)
        elif parent.type == NodeType.RETRY:
            self._retry_child_done(parent, child)

    def _scope_of(self, boundary: Node | None) -> Scope:
        if boundary is None:
            return Scope(self._global, {}, global_names=self._global_names)
        if boundary.type == NodeType.DAG:
            return self._dag_scope(boundary)
        return self._steps_scope(boundary)

    def _collect_outputs(self, node: Node) -> None:
        """A steps or dag template's outputs, taken from its children."""
        declared = self.templates[node.template_name].get("outputs") or {}
        scope = self._scope_of(node)
        params, artifacts = [], []
        try:
            for p in declared.get("parameters") or []:
                vf = p.get("valueFrom") or {}
                source = vf.get("parameter") if vf.get("parameter") is not None else p.get("value", "")
                if vf.get("expression"):
                    source = "{{=" + vf["expression"] + "}}"
                try:
                    value = substitute(str(source), scope.lookup)
                except UnresolvedReference:
                    if vf.get("default") is None:
                        raise
                    value = str(vf["default"])
                params.append({"name": p["name"], "value": value})
            for a in declared.get("artifacts") or []:
                refs = references(a.get("from", ""))
                if not refs:
                    continue
                try:
                    origin = scope.artifact(refs[0])
                except UnresolvedReference:
                    if a.get("optional"):
                        continue
                    raise
                artifacts.append({k: v for k, v in {**origin, "name": a["name"]}.items() if k != "path"})
        except UnresolvedReference as exc:
            node.phase = NodePhase.ERROR
            node.message = f"outputs of {node.name}: {exc}"
            return
        node.outputs = {k: v for k, v in (("parameters", params), ("artifacts", artifacts)) if v}
