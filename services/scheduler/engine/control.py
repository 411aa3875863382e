"""Exit handlers, suspend, deadlines, and the workflow-wide stop, terminate and resume."""

from __future__ import annotations

from typing import Any

from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import FULFILLED_OK, Node, NodePhase, NodeType
from treadle.services.scheduler.engine.resolve import Scope
from treadle.spec.durations import parse_duration
from treadle.spec.template import substitute

WORKFLOW_DEADLINE = "workflow:deadline"


class ControlMixin(EngineBase):
    # -- exit handlers --------------------------------------------------------

    def _run_exit_hook(self, node: Node) -> bool:
        """Start node's onExit / hooks.exit template; True when node must wait for it."""
        hook = node.progress.get("onExit")
        if not hook or node.progress.get("exitNode") or self.state.shutdown == "Terminate":
            return False
        boundary = self.nodes.get(node.boundary_id) if node.boundary_id else None
        scope = self._scope_of(boundary).with_names(self._node_status_names(node))
        call = {"name": f"{node.display_name}.onExit", **hook}
        exit_name = f"{node.name}.onExit"
        node.progress["exitNode"] = self._node_id(exit_name)
        self.nodes.put(node)
        self._call(
            exit_name, call["name"], call, scope, boundary=node.boundary_id, parent=node.id, flags={"inExit": True}
        )
        return True

    def _node_status_names(self, node: Node) -> dict[str, str]:
        prefix = "tasks" if node.boundary_id and self._boundary_type(node) == NodeType.DAG else "steps"
        names = {f"{prefix}.{node.display_name}.status": node.phase}
        if node.outputs.get("exitCode") is not None:
            names[f"{prefix}.{node.display_name}.exitCode"] = str(node.outputs["exitCode"])
        return names

    def _boundary_type(self, node: Node) -> str:
        boundary = self.nodes.get(node.boundary_id)
        return boundary.type if boundary else ""

    def _finish_workflow(self, root: Node) -> None:
        if root.id == self.state.exit_node:
            self._complete_workflow(root)
            return
        phase = NodePhase.SUCCEEDED if root.phase in FULFILLED_OK else root.phase
        message = "" if phase == NodePhase.SUCCEEDED else self._failure_message(root)
        if root.type != NodeType.POD and message == "":
            message = root.message
        self.state.main_phase = phase
        self.state.main_message = self.state.main_message or message
        hook = (self.spec.get("hooks") or {}).get("exit") or (
            {"template": self.spec["onExit"]} if self.spec.get("onExit") else None
        )
        if hook and self.state.shutdown != "Terminate":
            exit_name = f"{self.state.name}.onExit"
            self.state.exit_node = self._node_id(exit_name)
            call = {"name": exit_name, **hook}
            scope = Scope(self._global, {}, global_names=self._global_names)
            self._call(exit_name, exit_name, call, scope, boundary="", parent="", flags={"inExit": True})
            return
        self._complete_workflow(None)

    def _complete_workflow(self, exit_node: Node | None) -> None:
        self._fire_hooks()  # a hook whose expression the last step made true still runs
        if self.state.open_hooks > 0:
            self.state.completing = True  # finishes when the last hook node does
            return
        self.state.hooks.clear()
        if self.locks is not None and self._workflow_locks():
            self.locks.release(self.state.name)
            self._out.locks_released = True
        phase, message = self.state.main_phase, self.state.main_message
        if exit_node is not None and exit_node.phase not in FULFILLED_OK and phase == NodePhase.SUCCEEDED:
            phase, message = exit_node.phase, f"exit handler failed: {self._failure_message(exit_node)}"
        self.state.phase = phase
        self.state.message = message if phase != NodePhase.SUCCEEDED else ""
        self.state.finished_at = self.now()
        self.state.timers.clear()

    # -- suspend --------------------------------------------------------------

    def _start_suspend(self, node: Node) -> None:
        duration = (self.templates[node.template_name].get("suspend") or {}).get("duration")
        if duration:
            scope = Scope(self._global, node.inputs, global_names=self._global_names)
            seconds = parse_duration(substitute(str(duration), scope.lookup), "suspend.duration")
            self._arm(node.id, self.now() + seconds)

    def _resume_node(self, node: Node) -> None:
        declared = self.templates[node.template_name].get("outputs") or {}
        supplied = {p["name"]: p["value"] for p in node.outputs.get("parameters") or []}
        params = []
        for p in declared.get("parameters") or []:
            vf = p.get("valueFrom") or {}
            if p["name"] in supplied:
                params.append({"name": p["name"], "value": supplied[p["name"]]})
            elif vf.get("default") is not None or p.get("default") is not None:
                params.append({"name": p["name"], "value": str(vf.get("default", p.get("default")))})
            else:
                self._finish(node, NodePhase.ERROR, f"output parameter {p['name']!r} was not supplied before resume")
                return
        node.outputs = {"parameters": params} if params else {}
        self._finish(node, NodePhase.SUCCEEDED)

    # -- timers ---------------------------------------------------------------

    def _fire(self, key: str) -> None:
        self.state.timers.pop(key, None)
        if key == WORKFLOW_DEADLINE:
            if not self.state.done and not self.state.shutdown:
                seconds = self.spec.get("activeDeadlineSeconds")
                self._shut_down("Stop", f"Max duration limit exceeded: the workflow ran past {seconds} seconds")
            return
        node = self.nodes.get(key)
        if node is None or node.done:
            return
        if node.type == NodeType.RETRY:
            self._next_attempt(node)
        elif node.type == NodeType.SUSPEND:
            self._resume_node(node)
        elif node.type in (NodeType.STEPS, NodeType.DAG):
            seconds = self.templates[node.template_name].get("activeDeadlineSeconds") or self.templates[
                node.template_name
            ].get("timeout")
            message = f"step exceeded its deadline of {seconds} seconds"
            self._cancel_pods(self._pods_below(node), message)
            if not node.done:
                self._finish(node, NodePhase.FAILED, message)

    def _pods_below(self, node: Node) -> list[Node]:
        found, stack = [], list(node.children)
        while stack:
            child = self.nodes.get(stack.pop())
            if child is None:
                continue
            if child.type == NodeType.POD and not child.done:
                found.append(child)
            stack.extend(child.children)
        return found

    # -- workflow-wide control --------------------------------------------------

    def _workflow_locks(self) -> list[str]:
        raise NotImplementedError

    def _shut_down(self, how: str, message: str) -> None:
        self.state.shutdown = how
        self.state.main_message = message
        pods = [n for n in self.nodes.all() if n.type == NodeType.POD and not n.done]
        if how == "Stop":
            pods = [p for p in pods if not p.progress.get("inExit")]
        self._cancel_pods(pods, message)
        for node in list(self.nodes.all()):
            stoppable = how == "Terminate" or not node.progress.get("inExit")
            if node.type == NodeType.SUSPEND and not node.done and stoppable:
                self._finish(node, NodePhase.FAILED, message)
        for node_id in list(self.state.lock_waiters):
            waiter = self.nodes.get(node_id)
            if waiter is not None and not waiter.done and (how == "Terminate" or not waiter.progress.get("inExit")):
                self.state.lock_waiters.remove(node_id)
                self._finish(waiter, NodePhase.FAILED, message)
        waiting = [
            n for n in self.nodes.all() if n.type == NodeType.RETRY and not n.done and n.progress.get("waitingUntil")
        ]
        for node in waiting:
            self.state.timers.pop(node.id, None)
            self._finish(node, NodePhase.FAILED, message)

    def _select_nodes(self, selector: str) -> list[Node]:
        """Nodes a Resume or SetNode call names: id, name or display name; empty means every suspend node."""
        nodes = [n for n in self.nodes.all() if n.type == NodeType.SUSPEND and not n.done]
        if not selector:
            return nodes
        return [n for n in nodes if selector in (n.id, n.name, n.display_name)]

    def _supplied_outputs(self, node: Node, parameters: dict[str, str]) -> list[dict[str, Any]]:
        current = {p["name"]: p["value"] for p in node.outputs.get("parameters") or []}
        current.update(parameters)
        return [{"name": k, "value": v} for k, v in current.items()]
