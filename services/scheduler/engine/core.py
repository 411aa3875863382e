"""The engine's shared machinery: creating, finishing and launching nodes, and the event queue."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from treadle.services.scheduler.engine.model import (
    FULFILLED_OK,
    Cancel,
    Decisions,
    Launch,
    Node,
    NodePhase,
    NodeType,
    Timer,
    WorkflowState,
    alternative_node_id,
    node_id_for,
)
from treadle.services.scheduler.engine.nodes import Locks, MemoCache, NodeTable
from treadle.services.scheduler.engine.resolve import Scope, iso, param_value
from treadle.spec.durations import parse_duration
from treadle.spec.scope import template_kind
from treadle.spec.template import UnresolvedReference, substitute

KIND_TO_TYPE = {
    "container": NodeType.POD,
    "script": NodeType.POD,
    "steps": NodeType.STEPS,
    "dag": NodeType.DAG,
    "suspend": NodeType.SUSPEND,
}
COMPOSITES = (NodeType.STEPS, NodeType.DAG)
# Flags a node passes on to every node created below it.
INHERITED = ("inExit",)


class EngineBase:
    """State and helpers the steps, dag, retry and control parts share."""

    def __init__(
        self,
        state: WorkflowState,
        spec: dict[str, Any],
        nodes: NodeTable,
        *,
        namespace: str = "default",
        created_at: float | None = None,
        now: Callable[[], float] = time.time,
        memo: MemoCache | None = None,
        locks: Locks | None = None,
    ) -> None:
        self.memo = memo
        self.locks = locks
        self.state = state
        self.spec = spec
        self.nodes = nodes
        self.namespace = namespace
        self.created_at = created_at
        self.now = now
        self.templates: dict[str, dict[str, Any]] = {t["name"]: t for t in spec.get("templates") or []}
        self._finished: deque[str] = deque()
        self._out = Decisions()
        self._released = False
        # Node id -> its children as a set, beside the list, for parents that `_reuse` adds kept
        # nodes to (after a workflow retry): a membership test per reused child would otherwise
        # scan the list, O(n²) for a loop of n. Built on first use; every append keeps it current.
        self._child_sets: dict[str, set[str]] = {}
        # The parents of the pods in state.queued, or more (None: not known, after a restart). Lets
        # `_start_queued` stop once every one of them is blocked by a full ancestor.
        self._queue_parents: set[str] | None = None

    # -- provided by the parts ----------------------------------------------------

    def _call(
        self, name: str, display: str, call: dict[str, Any], scope: Scope, *, boundary: str, parent: str,
        flags: dict[str, Any] | None = None, expand: bool = True,
    ) -> None:  # fmt: skip
        raise NotImplementedError

    def _start_composite(self, node: Node) -> None:
        raise NotImplementedError

    def _child_done(self, parent: Node, child: Node) -> None:
        raise NotImplementedError

    def _scope_of(self, boundary: Node | None) -> Scope:
        raise NotImplementedError

    def _finish_workflow(self, root: Node) -> None:
        raise NotImplementedError

    def _next_attempt(self, retry: Node) -> None:
        raise NotImplementedError

    def _feed_starved(self) -> None:
        raise NotImplementedError

    def _widen_dag(self, dag: Node) -> None:
        raise NotImplementedError

    def _dag_roots(self, dag: Node) -> list[str]:
        raise NotImplementedError

    def _items(self, call: dict[str, Any], scope: Scope) -> list[Any]:
        raise NotImplementedError

    def _fire_hooks(self) -> bool:
        raise NotImplementedError

    def _stop_daemons(self, scope: Node) -> None:
        raise NotImplementedError

    def _acquire_for(self, node: Node) -> bool:
        raise NotImplementedError

    def _retry_lock_waiters(self) -> bool:
        raise NotImplementedError

    def _release_for(self, node: Node) -> None:
        raise NotImplementedError

    def _begin(self, node: Node) -> None:
        raise NotImplementedError

    def _arm_hooks(self, owner_name: str, hooks: dict[str, Any], boundary: str) -> None:
        raise NotImplementedError

    def _hook_done(self, node: Node) -> None:
        raise NotImplementedError

    def _complete_workflow(self, exit_node: Node | None) -> None:
        raise NotImplementedError

    # -- nodes ----------------------------------------------------------------

    def _node_id(self, name: str) -> str:
        """The id for the node called name: its Argo id, unless a node of another name has that one.

        Then (a 32-bit hash collision) the first free alternative, remembered in the state so that
        every later lookup, after a restart too, finds it (`_node_named`).
        """
        known = self.state.node_ids.get(name)
        if known is not None:
            return known
        node_id = node_id_for(self.state.name, name)
        tries = 0
        while (holder := self.nodes.get(node_id)) is not None and holder.name != name:
            tries += 1
            node_id = alternative_node_id(self.state.name, name, tries)
        if tries:
            self.state.node_ids[name] = node_id
        return node_id

    def _node_named(self, name: str) -> Node | None:
        """The node called name, if it exists."""
        node = self.nodes.get(self.state.node_ids.get(name) or node_id_for(self.state.name, name))
        return node if node is not None and node.name == name else None

    def _has_child(self, parent: Node, child_id: str) -> bool:
        members = self._child_sets.get(parent.id)
        # The set holds at least the list's ids (appends go to both), so equal sizes mean equal contents.
        if members is None or len(members) != len(parent.children):
            members = self._child_sets[parent.id] = set(parent.children)
        return child_id in members

    def _add_child(self, parent: Node, child_id: str) -> None:
        parent.children.append(child_id)
        members = self._child_sets.get(parent.id)
        if members is not None:
            members.add(child_id)

    def _new_node(
        self, name: str, display: str, type_: str, template_name: str, *, boundary: str, parent: str,
        phase: str = NodePhase.PENDING, message: str = "", progress: dict[str, Any] | None = None,
    ) -> Node:  # fmt: skip
        node = Node(
            id=self._node_id(name),
            name=name,
            display_name=display,
            type=type_,
            template_name=template_name,
            phase=phase,
            boundary_id=boundary,
            parent_id=parent,
            started_at=self.now(),
            message=message,
            progress=dict(progress or {}),
            seq=self.state.node_seq,
        )
        self.state.node_seq += 1
        if parent:
            parent_node = self.nodes.get(parent)
            if parent_node is not None:
                self._add_child(parent_node, node.id)
                self.nodes.put(parent_node)
                for flag in INHERITED:
                    if parent_node.progress.get(flag):
                        node.progress[flag] = parent_node.progress[flag]
        self.nodes.put(node)
        return node

    def _execute_template(
        self, name: str, display: str, template_name: str, inputs: dict[str, Any], *, boundary: str, parent: str,
        flags: dict[str, Any],
    ) -> None:  # fmt: skip
        tmpl = self.templates[template_name]
        type_ = KIND_TO_TYPE[template_kind(tmpl)]
        node = self._new_node(name, display, type_, template_name, boundary=boundary, parent=parent, progress=flags)
        node.inputs = inputs
        if type_ == NodeType.POD:
            node.started_at = None
            node.attempt = self.state.next_attempts.pop(node.id, 0)
            self.state.pods_total += 1
        else:
            deadline = self._deadline(tmpl, node)
            if deadline:
                self._arm(node.id, self.now() + deadline)
        self.nodes.put(node)
        if self._acquire_for(node):
            self._begin(node)

    def _finish(self, node: Node, phase: str, message: str = "") -> None:
        """Mark node final and queue its parent's reaction (after its exit hook, if any)."""
        node.phase = phase
        node.message = message
        node.finished_at = self.now()
        self.state.timers.pop(node.id, None)
        if node.progress.get("locks"):
            self._release_for(node)
            self._out.locks_released = self._released = True
        if node.type in COMPOSITES and phase == NodePhase.SUCCEEDED:
            self._collect_outputs(node)
        if node.type in COMPOSITES and node.progress.get("daemons"):
            self._stop_daemons(node)
        memo = node.progress.get("memoize")
        if memo and node.phase == NodePhase.SUCCEEDED and not memo.get("hit") and self.memo is not None:
            self.memo.put(memo["cache"], memo["key"], node.outputs, node.id)
        self._publish_globals(node)
        self.nodes.put(node)
        if self._run_exit_hook(node):
            return
        self._finished.append(node.id)

    def _drain(self) -> Decisions:
        while True:
            self._process_finished()
            released, self._released = self._released, False
            if released and self.state.lock_waiters and self._retry_lock_waiters():
                continue
            if not self._fire_hooks() and not self._finished:
                break
        out, self._out = self._out, Decisions()
        return out

    def _process_finished(self) -> None:
        while self._finished:
            node = self.nodes.get(self._finished.popleft())
            if node is None:
                continue
            parent = self.nodes.get(node.parent_id) if node.parent_id else None
            if parent is None and node.progress.get("hook"):
                self._hook_done(node)
            elif parent is None:
                self._finish_workflow(node)
            elif parent.progress.get("exitNode") == node.id:
                self._finished.append(parent.id)  # the parent's exit hook is done: now its parent may react
            elif not parent.done and not (node.progress.get("daemoned") and parent.type != NodeType.RETRY):
                self._child_done(parent, node)  # (a daemoned node was counted when it came up: daemons.py)

    # -- pods -------------------------------------------------------------------

    def _launch(self, pod: Node) -> None:
        if self.state.shutdown and (self.state.shutdown == "Terminate" or not pod.progress.get("inExit")):
            self.state.pods_done += 1
            self._finish(pod, NodePhase.FAILED, f"workflow was {self._shutdown_word()} before this step started")
            return
        if not self._can_start(pod):
            self.state.queued.append(pod.id)
            if self._queue_parents is not None:
                self._queue_parents.add(pod.parent_id)
            return
        self._start_pod(pod)

    def _start_pod(self, pod: Node) -> None:
        pod.phase = NodePhase.RUNNING
        pod.started_at = self.now()
        self.nodes.put(pod)
        self.state.pods_running += 1
        for limited in self._limited_ancestors(pod):
            limited.progress["activePods"] = limited.progress.get("activePods", 0) + 1
            self.nodes.put(limited)
        tmpl = self.templates[pod.template_name]
        self._out.launches.append(Launch(pod.id, pod.attempt, self._deadline(tmpl, pod)))

    def _can_start(self, pod: Node) -> bool:
        if self.state.suspended and not pod.progress.get("inExit"):
            return False
        limit = int(self.spec.get("parallelism") or 0)
        if limit and self.state.pods_running >= limit:
            return False
        for limited in self._limited_ancestors(pod):
            if limited.progress.get("activePods", 0) >= int(self.templates[limited.template_name]["parallelism"]):
                return False
        return True

    def _limited_ancestors(self, pod: Node) -> list[Node]:
        out = []
        current = self.nodes.get(pod.parent_id) if pod.parent_id else None
        while current is not None:
            if current.type in COMPOSITES and self.templates[current.template_name].get("parallelism"):
                out.append(current)
            current = self.nodes.get(current.parent_id) if current.parent_id else None
        return out

    def _release(self, pod: Node) -> None:
        """A started pod ended: free its slots and start what was waiting for them."""
        self.state.pods_running = max(0, self.state.pods_running - 1)
        for limited in self._limited_ancestors(pod):
            limited.progress["activePods"] = max(0, limited.progress.get("activePods", 0) - 1)
            self.nodes.put(limited)
        self._start_queued()
        self._feed_starved()

    def _start_queued(self) -> None:
        """Start the waiting pods that may start now, oldest first.

        Runs after every finished pod, over a queue as long as the window, so it does not ask
        `_can_start` of each. Starting pods only takes slots, so within a pass: once the workflow's
        parallelism is used up nothing else can start; a limited ancestor found full stays full, and
        the pods of a parent below it stay queued; and once the parents of every queued pod are
        blocked so, the rest of the queue stays as it is. A finished pod then costs a few steps of
        this loop, not one per waiting pod.
        """
        waiting, self.state.queued = self.state.queued, []
        limit = int(self.spec.get("parallelism") or 0)
        chains: dict[str, list[Node]] = {}
        full: set[str] = set()
        # Parents whose pods cannot start in this pass, and the parents of the pods that stay queued.
        blocked: set[str] = set()
        kept: set[str] = set()
        parents = self._queue_parents
        # Pods queued meanwhile (a hook's pods while shutting down) add their parents here.
        added: set[str] = set()
        self._queue_parents = added
        for i, pod_id in enumerate(waiting):
            pod = self.nodes.get(pod_id)
            if pod is None or pod.done:
                continue
            if self.state.shutdown:
                self._launch(pod)
                continue
            if limit and self.state.pods_running >= limit:
                # The rest wait as they are (a queued pod is never done: cancelling takes it out first).
                self.state.queued.extend(waiting[i:])
                self._queue_parents = None if parents is None else parents | added
                return
            if self.state.suspended and not pod.progress.get("inExit"):
                self.state.queued.append(pod_id)
                kept.add(pod.parent_id)
                continue
            chain = chains.get(pod.parent_id)
            if chain is None:
                chain = chains[pod.parent_id] = self._limited_ancestors(pod)
            if chain and self._first_full(chain, full):
                self.state.queued.append(pod_id)
                kept.add(pod.parent_id)
                blocked.add(pod.parent_id)
                if parents is not None and len(blocked) == len(parents):  # blocked ⊆ parents: all are
                    self.state.queued.extend(waiting[i + 1 :])
                    self._queue_parents = parents | added
                    return
                continue
            self._start_pod(pod)
        self._queue_parents = kept | added

    def _first_full(self, chain: list[Node], full: set[str]) -> bool:
        """Whether a limited ancestor in chain has no slot left (recording it in full)."""
        for limited in chain:
            if limited.id in full:
                return True
            if limited.progress.get("activePods", 0) >= int(self.templates[limited.template_name]["parallelism"]):
                full.add(limited.id)
                return True
        return False

    def _cancel_pods(self, pods: list[Node], message: str) -> None:
        """Kill running pods and fail them, and fail pods that were waiting."""
        for pod in pods:
            if pod.done:
                continue
            if pod.id in self.state.lock_waiters:
                self.state.lock_waiters.remove(pod.id)
                self.state.pods_done += 1
                self._finish(pod, NodePhase.FAILED, message)
                continue
            was_queued = pod.id in self.state.queued
            if was_queued:
                self.state.queued.remove(pod.id)
            else:
                self._out.cancels.append(Cancel(pod.id, pod.attempt, message))
            self.state.pods_done += 1
            self._finish(pod, NodePhase.FAILED, message)
            if not was_queued:
                self._release(pod)

    def _shutdown_word(self) -> str:
        return {"Stop": "stopped", "Terminate": "terminated"}.get(self.state.shutdown, "shut down")

    # -- time -----------------------------------------------------------------

    def _arm(self, key: str, at: float) -> None:
        self.state.timers[key] = at
        self._out.timers.append(Timer(key, at))

    def _deadline(self, tmpl: dict[str, Any], node: Node) -> float | None:
        scope = Scope(self._global, node.inputs)
        found: list[float] = []
        for field in ("activeDeadlineSeconds", "timeout"):
            raw = tmpl.get(field)
            if raw in (None, ""):
                continue
            try:
                found.append(parse_duration(substitute(str(raw), scope.lookup), field))
            except (UnresolvedReference, Exception):  # lint checks the shape; a bad value means no limit
                continue
        return min(found) if found else None

    # -- outputs and globals ---------------------------------------------------

    def _collect_outputs(self, node: Node) -> None:
        raise NotImplementedError

    def _publish_globals(self, node: Node) -> None:
        declared = self.templates[node.template_name].get("outputs") or {} if node.template_name else {}
        for kind in ("parameters", "artifacts"):
            for decl in declared.get(kind) or []:
                global_name = decl.get("globalName")
                produced = next((o for o in node.outputs.get(kind) or [] if o.get("name") == decl["name"]), None)
                if not global_name or produced is None:
                    continue
                entries = [e for e in self.state.outputs.get(kind) or [] if e.get("name") != global_name]
                entries.append({**produced, "name": global_name})
                self.state.outputs[kind] = entries

    def _failure_message(self, child: Node) -> str:
        if child.type == NodeType.POD:
            return f"step {child.name!r} failed: {child.message or child.phase}"
        return child.message or f"{child.name} {child.phase.lower()}"

    def _tolerated(self, child: Node) -> bool:
        """Whether child's outcome lets its scope go on (success, skip, or continueOn)."""
        if child.phase in FULFILLED_OK or child.progress.get("daemoned"):
            return True
        on = child.progress.get("continueOn") or {}
        return bool(
            (child.phase == NodePhase.FAILED and on.get("failed"))
            or (child.phase == NodePhase.ERROR and on.get("error"))
        )

    def _global(self, ref: str) -> str | None:
        if ref.startswith("workflow.parameters.") and ref != "workflow.parameters.json":
            return param_value(self.spec.get("arguments") or {}, ref.removeprefix("workflow.parameters."))
        if ref.startswith("workflow.outputs.parameters."):
            return param_value(self.state.outputs, ref.removeprefix("workflow.outputs.parameters."))
        if ref == "workflow.failures":
            return self._failures_json()
        if ref.startswith("workflow.outputs.artifacts."):
            name = ref.removeprefix("workflow.outputs.artifacts.")
            entry = next((a for a in self.state.outputs.get("artifacts") or [] if a.get("name") == name), None)
            return None if entry is None else json.dumps(entry)
        return self._global_names().get(ref)

    def _global_names(self) -> dict[str, str]:
        names = {
            "workflow.name": self.state.name,
            "workflow.uid": self.state.uid,
            "workflow.namespace": self.namespace,
            "workflow.serviceAccountName": self.spec.get("serviceAccountName") or "default",
            "workflow.creationTimestamp": iso(self.created_at),
            "workflow.status": self.state.main_phase or self.state.phase,
            "workflow.duration": f"{max(0.0, self.now() - (self.state.started_at or self.now())):.3f}",
        }
        params = (self.spec.get("arguments") or {}).get("parameters") or []
        for p in params:
            names[f"workflow.parameters.{p['name']}"] = str(p.get("value", ""))
        names["workflow.parameters.json"] = json.dumps(
            {p["name"]: str(p.get("value", "")) for p in params}, separators=(",", ":")
        )
        names["workflow.mainEntrypoint"] = str(self.spec.get("entrypoint", ""))
        for key, value in getattr(self, "labels", {}).items():
            names[f"workflow.labels.{key}"] = value
        for key, value in getattr(self, "annotations", {}).items():
            names[f"workflow.annotations.{key}"] = value
        for p in self.state.outputs.get("parameters") or []:
            names[f"workflow.outputs.parameters.{p['name']}"] = str(p.get("value", ""))
        if self.state.main_phase:  # the exit handler is the only place failures can be known
            names["workflow.failures"] = self._failures_json()
        return names

    def _failures_json(self) -> str:
        if not self.state.main_phase:
            return "[]"
        failed = [
            {
                "displayName": n.display_name,
                "message": n.message,
                "templateName": n.template_name,
                "phase": n.phase,
                "podName": n.pod_name,
                "finishedAt": iso(n.finished_at),
            }
            for n in self.nodes.all()
            if n.type == NodeType.POD and n.phase in (NodePhase.FAILED, NodePhase.ERROR)
        ]
        return json.dumps(failed, separators=(",", ":"))

    def _run_exit_hook(self, node: Node) -> bool:
        raise NotImplementedError
