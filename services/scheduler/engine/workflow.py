"""The workflow state machine for Steps and DAG templates.

Events come in (the workflow starts, a pod attempt finished) and decisions
go out (launch these pod attempts). Work is driven by a queue of finished
nodes: each finished node advances only its parent, and a finished DAG task
looks only at its own dependents, so no event rescans the graph.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from treadle.errors import TreadleError
from treadle.services.scheduler.engine.model import (
    FULFILLED_OK,
    Launch,
    Node,
    NodePhase,
    NodeType,
    WorkflowState,
    node_id_for,
)
from treadle.services.scheduler.engine.nodes import NodeTable
from treadle.services.scheduler.engine.resolve import Scope, iso, param_value
from treadle.spec.scope import template_kind
from treadle.spec.template import UnresolvedReference, references, substitute, substitute_tree

KIND_TO_TYPE = {"container": NodeType.POD, "script": NodeType.POD, "steps": NodeType.STEPS, "dag": NodeType.DAG}


class BindError(TreadleError):
    """A step's inputs could not be bound when it was about to start."""


@dataclass(frozen=True)
class DagIndex:
    tasks: dict[str, dict[str, Any]]
    deps: dict[str, list[str]]
    dependents: dict[str, list[str]]
    roots: list[str]


class WorkflowEngine:
    def __init__(
        self,
        state: WorkflowState,
        spec: dict[str, Any],
        nodes: NodeTable,
        *,
        namespace: str = "default",
        created_at: float | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.spec = spec
        self.nodes = nodes
        self.namespace = namespace
        self.created_at = created_at
        self.now = now
        self.templates: dict[str, dict[str, Any]] = {t["name"]: t for t in spec.get("templates") or []}
        self._dag_indexes: dict[str, DagIndex] = {}
        self._group_indexes: dict[str, dict[str, int]] = {}
        self._finished: deque[str] = deque()
        self._launches: list[Launch] = []

    # -- events ---------------------------------------------------------------

    def start(self) -> list[Launch]:
        """Start the workflow at its entrypoint. Does nothing once started."""
        if self.state.phase != NodePhase.PENDING:
            return []
        self.state.phase = NodePhase.RUNNING
        self.state.started_at = self.now()
        args = self.spec.get("arguments") or {}
        scope = Scope(self._global, {})
        self._execute(self.state.name, self.state.name, self.spec["entrypoint"], args, scope, boundary="", parent="")
        return self._drain()

    def pod_started(self, node_id: str, attempt: int) -> None:
        node = self.nodes.get(node_id)
        if node is not None and node.attempt == attempt and node.phase == NodePhase.PENDING:
            node.phase = NodePhase.RUNNING
            node.started_at = self.now()
            self.nodes.put(node)

    def complete_pod(
        self, node_id: str, attempt: int, phase: str, outputs: dict[str, Any], message: str = ""
    ) -> list[Launch] | None:
        """Record a pod attempt's outcome. None when the attempt is unknown, stale or already done."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD or node.attempt != attempt or node.done:
            return None
        node.outputs = outputs
        self.state.pods_done += 1
        self._finish(node, phase, message)
        return self._drain()

    def relaunch(self, node_id: str) -> Launch | None:
        """Start a new attempt of an unfinished pod node (after its runtime lost it)."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD or node.done:
            return None
        node.attempt += 1
        node.phase = NodePhase.PENDING
        self.nodes.put(node)
        return Launch(node.id, node.attempt)

    def unfinished_pods(self) -> list[Node]:
        return [n for n in self.nodes.all() if n.type == NodeType.POD and not n.done]

    def step_context(self, node_id: str) -> dict[str, Any]:
        """The pod node's template with every tag resolved and its input artifacts' sources attached."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD:
            raise UnresolvedReference(f"node {node_id}")
        tmpl = self.templates[node.template_name]
        scope = Scope(self._global, node.inputs, extra={"pod.name": node.pod_name, "node.name": node.name})
        body = {k: v for k, v in tmpl.items() if k not in ("name", "inputs")}
        resolved: dict[str, Any] = substitute_tree(body, scope.lookup)
        resolved["name"] = tmpl["name"]
        artifacts = []
        for entry in node.inputs.get("artifacts") or []:
            artifacts.append({**entry, "path": substitute(entry.get("path", ""), scope.lookup)})
        resolved["inputs"] = {"parameters": node.inputs.get("parameters") or [], "artifacts": artifacts}
        return resolved

    # -- creating nodes -------------------------------------------------------

    def _execute(
        self,
        name: str,
        display: str,
        template_name: str,
        args: dict[str, Any],
        scope: Scope,
        *,
        boundary: str,
        parent: str,
    ) -> None:
        tmpl = self.templates[template_name]
        node = Node(
            id=node_id_for(self.state.name, name),
            name=name,
            display_name=display,
            type=KIND_TO_TYPE[template_kind(tmpl)],
            template_name=template_name,
            boundary_id=boundary,
            parent_id=parent,
            started_at=self.now(),
        )
        self._adopt(parent, node)
        try:
            node.inputs = self._bind_inputs(tmpl, args, scope)
        except (UnresolvedReference, BindError) as exc:
            self._finish(node, NodePhase.ERROR, str(exc))
            return
        if node.type == NodeType.POD:
            node.started_at = None
            self.state.pods_total += 1
            self.nodes.put(node)
            self._launches.append(Launch(node.id, node.attempt))
        elif node.type == NodeType.STEPS:
            node.phase = NodePhase.RUNNING
            node.progress = {"group": -1}
            self.nodes.put(node)
            self._next_group(node)
        else:
            node.phase = NodePhase.RUNNING
            node.progress = {"running": 0, "finished": 0, "failed": ""}
            self.nodes.put(node)
            index = self._dag_index(template_name)
            for task in index.roots:
                self._start_task(node, index.tasks[task])
            if not index.tasks:
                self._finish(node, NodePhase.SUCCEEDED)

    def _adopt(self, parent_id: str, child: Node) -> None:
        if not parent_id:
            return
        parent = self.nodes.get(parent_id)
        if parent is not None:
            parent.children.append(child.id)
            self.nodes.put(parent)

    def _bind_inputs(self, tmpl: dict[str, Any], args: dict[str, Any], scope: Scope) -> dict[str, Any]:
        declared = tmpl.get("inputs") or {}
        given = {p.get("name"): p for p in args.get("parameters") or []}
        params = []
        for p in declared.get("parameters") or []:
            name = p["name"]
            if name in given and given[name].get("value") is not None:
                value = substitute(str(given[name]["value"]), scope.lookup)
            elif p.get("value") is not None:
                value = substitute(str(p["value"]), scope.lookup)
            elif p.get("default") is not None:
                value = str(p["default"])
            else:
                raise BindError(f"input parameter {name!r} of template {tmpl['name']!r} was not supplied")
            params.append({"name": name, "value": value})
        given_arts = {a.get("name"): a for a in args.get("artifacts") or []}
        artifacts = []
        for a in declared.get("artifacts") or []:
            source = given_arts.get(a["name"]) or a
            entry: dict[str, Any] = {"name": a["name"], "path": a.get("path", "")}
            for key in ("optional", "mode", "archive"):
                if a.get(key) is not None:
                    entry[key] = a[key]
            if source.get("from"):
                origin = scope.artifact(references(source["from"])[0])
                if origin.get("stored"):
                    entry["stored"] = origin["stored"]
                elif not a.get("optional"):
                    raise BindError(f"input artifact {a['name']!r}: {source['from']} has no stored object")
            elif source.get("raw") is not None:
                entry["raw"] = {"data": substitute(str(source["raw"].get("data", "")), scope.lookup)}
            elif not a.get("optional"):
                raise BindError(f"input artifact {a['name']!r} of template {tmpl['name']!r} was not supplied")
            artifacts.append(entry)
        return {"parameters": params, "artifacts": artifacts}

    # -- steps ----------------------------------------------------------------

    def _next_group(self, steps: Node) -> None:
        groups = self.templates[steps.template_name].get("steps") or []
        gi = steps.progress["group"] + 1
        steps.progress["group"] = gi
        self.nodes.put(steps)
        if gi >= len(groups):
            self._finish(steps, NodePhase.SUCCEEDED)
            return
        name = f"{steps.name}[{gi}]"
        group = Node(
            id=node_id_for(self.state.name, name),
            name=name,
            display_name=f"[{gi}]",
            type=NodeType.STEP_GROUP,
            template_name=steps.template_name,
            phase=NodePhase.RUNNING,
            boundary_id=steps.id,
            parent_id=steps.id,
            started_at=self.now(),
            progress={"pending": len(groups[gi] or []), "failed": ""},
        )
        self._adopt(steps.id, group)
        self.nodes.put(group)
        scope = self._steps_scope(steps)
        for step in groups[gi] or []:
            args = step.get("arguments") or {}
            self._execute(
                f"{name}.{step['name']}",
                step["name"],
                step["template"],
                args,
                scope,
                boundary=steps.id,
                parent=group.id,
            )
        if not groups[gi]:
            self._finish(group, NodePhase.SUCCEEDED)

    def _steps_scope(self, steps: Node) -> Scope:
        def sibling(prefix: str, name: str) -> Node | None:
            gi = self._group_index(steps.template_name).get(name)
            if prefix != "steps" or gi is None:
                return None
            return self.nodes.get(node_id_for(self.state.name, f"{steps.name}[{gi}].{name}"))

        return Scope(self._global, steps.inputs, sibling)

    def _group_index(self, template_name: str) -> dict[str, int]:
        index = self._group_indexes.get(template_name)
        if index is None:
            groups = self.templates[template_name].get("steps") or []
            index = {s["name"]: gi for gi, group in enumerate(groups) for s in group or []}
            self._group_indexes[template_name] = index
        return index

    def _group_child_done(self, group: Node, child: Node) -> None:
        group.progress["pending"] -= 1
        if child.phase not in FULFILLED_OK and not group.progress["failed"]:
            group.progress["failed"] = child.id
        self.nodes.put(group)
        if group.progress["pending"] > 0:
            return
        failed = self.nodes.get(group.progress["failed"]) if group.progress["failed"] else None
        if failed is None:
            self._finish(group, NodePhase.SUCCEEDED)
        else:
            self._finish(group, NodePhase.FAILED, self._failure_message(failed))

    def _steps_group_done(self, steps: Node, group: Node) -> None:
        if group.phase in FULFILLED_OK:
            self._next_group(steps)
        else:
            self._finish(steps, NodePhase.FAILED, group.message)

    # -- dag ------------------------------------------------------------------

    def _dag_index(self, template_name: str) -> DagIndex:
        index = self._dag_indexes.get(template_name)
        if index is None:
            tasks = {t["name"]: t for t in (self.templates[template_name].get("dag") or {}).get("tasks") or []}
            deps = {name: list(t.get("dependencies") or []) for name, t in tasks.items()}
            dependents: dict[str, list[str]] = {name: [] for name in tasks}
            for name, ds in deps.items():
                for d in ds:
                    dependents[d].append(name)
            roots = [name for name, ds in deps.items() if not ds]
            index = DagIndex(tasks, deps, dependents, roots)
            self._dag_indexes[template_name] = index
        return index

    def _task_node(self, dag: Node, task: str) -> Node | None:
        return self.nodes.get(node_id_for(self.state.name, f"{dag.name}.{task}"))

    def _dag_scope(self, dag: Node) -> Scope:
        def sibling(prefix: str, name: str) -> Node | None:
            return self._task_node(dag, name) if prefix == "tasks" else None

        return Scope(self._global, dag.inputs, sibling)

    def _start_task(self, dag: Node, task: dict[str, Any]) -> None:
        dag.progress["running"] += 1
        self.nodes.put(dag)
        args = task.get("arguments") or {}
        self._execute(
            f"{dag.name}.{task['name']}", task["name"], task["template"], args, self._dag_scope(dag),
            boundary=dag.id, parent=dag.id,
        )  # fmt: skip

    def _dag_child_done(self, dag: Node, child: Node) -> None:
        progress = dag.progress
        progress["running"] -= 1
        progress["finished"] += 1
        if child.phase not in FULFILLED_OK and not progress["failed"]:
            progress["failed"] = child.id
        index = self._dag_index(dag.template_name)
        worklist = [child.display_name]
        while worklist:
            for candidate in index.dependents[worklist.pop()]:
                if self._task_node(dag, candidate) is not None:
                    continue
                dep_nodes = [self._task_node(dag, d) for d in index.deps[candidate]]
                if any(n is None or not n.done for n in dep_nodes):
                    continue
                blocker = next((n for n in dep_nodes if n is not None and n.phase not in FULFILLED_OK), None)
                if blocker is None:
                    if not progress["failed"]:  # failFast: nothing new starts after a failure
                        self._start_task(dag, index.tasks[candidate])
                    continue
                self._omit(dag, candidate, blocker)
                progress["finished"] += 1
                worklist.append(candidate)
        self.nodes.put(dag)
        if progress["running"] == 0 and (progress["finished"] == len(index.tasks) or progress["failed"]):
            failed = self.nodes.get(progress["failed"]) if progress["failed"] else None
            if failed is None:
                self._finish(dag, NodePhase.SUCCEEDED)
            else:
                self._finish(dag, NodePhase.FAILED, self._failure_message(failed))

    def _omit(self, dag: Node, task: str, blocker: Node) -> None:
        name = f"{dag.name}.{task}"
        node = Node(
            id=node_id_for(self.state.name, name),
            name=name,
            display_name=task,
            type=NodeType.SKIPPED,
            template_name=self._dag_index(dag.template_name).tasks[task]["template"],
            phase=NodePhase.OMITTED,
            boundary_id=dag.id,
            parent_id=dag.id,
            message=f"omitted: depends on {blocker.display_name!r}, which ended {blocker.phase}",
            started_at=self.now(),
            finished_at=self.now(),
        )
        self._adopt(dag.id, node)
        self.nodes.put(node)

    # -- finishing ------------------------------------------------------------

    def _finish(self, node: Node, phase: str, message: str = "") -> None:
        node.phase = phase
        node.message = message
        node.finished_at = self.now()
        if node.type in (NodeType.STEPS, NodeType.DAG) and phase == NodePhase.SUCCEEDED:
            self._collect_outputs(node)
        self._publish_globals(node)
        self.nodes.put(node)
        self._finished.append(node.id)

    def _collect_outputs(self, node: Node) -> None:
        """A steps or dag template's outputs, taken from its children."""
        declared = self.templates[node.template_name].get("outputs") or {}
        scope = self._steps_scope(node) if node.type == NodeType.STEPS else self._dag_scope(node)
        params, artifacts = [], []
        try:
            for p in declared.get("parameters") or []:
                vf = p.get("valueFrom") or {}
                source = vf.get("parameter") if vf.get("parameter") is not None else p.get("value", "")
                try:
                    value = substitute(str(source), scope.lookup)
                except UnresolvedReference:
                    if vf.get("default") is None:
                        raise
                    value = str(vf["default"])
                params.append({"name": p["name"], "value": value})
            for a in declared.get("artifacts") or []:
                origin = scope.artifact(references(a.get("from", ""))[0]) if a.get("from") else {}
                artifacts.append({k: v for k, v in {**origin, "name": a["name"]}.items() if k != "path"})
        except (UnresolvedReference, IndexError) as exc:
            node.phase = NodePhase.ERROR
            node.message = f"outputs of {node.name}: {exc}"
            return
        node.outputs = {k: v for k, v in (("parameters", params), ("artifacts", artifacts)) if v}

    def _publish_globals(self, node: Node) -> None:
        declared = self.templates[node.template_name].get("outputs") or {}
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

    def _drain(self) -> list[Launch]:
        while self._finished:
            node = self.nodes.get(self._finished.popleft())
            if node is None:
                continue
            parent = self.nodes.get(node.parent_id) if node.parent_id else None
            if parent is None:
                self._finish_workflow(node)
            elif parent.type == NodeType.STEP_GROUP:
                self._group_child_done(parent, node)
            elif parent.type == NodeType.STEPS:
                self._steps_group_done(parent, node)
            elif parent.type == NodeType.DAG:
                self._dag_child_done(parent, node)
        launches, self._launches = self._launches, []
        return launches

    def _finish_workflow(self, root: Node) -> None:
        self.state.phase = NodePhase.SUCCEEDED if root.phase in FULFILLED_OK else root.phase
        if self.state.phase == NodePhase.SUCCEEDED:
            self.state.message = ""
        else:
            self.state.message = self._failure_message(root) if root.type == NodeType.POD else root.message
        self.state.finished_at = self.now()

    # -- globals --------------------------------------------------------------

    def _global(self, ref: str) -> str | None:
        if ref.startswith("workflow.parameters."):
            return param_value(self.spec.get("arguments") or {}, ref.removeprefix("workflow.parameters."))
        if ref.startswith("workflow.outputs.parameters."):
            return param_value(self.state.outputs, ref.removeprefix("workflow.outputs.parameters."))
        return {
            "workflow.name": self.state.name,
            "workflow.uid": self.state.uid,
            "workflow.namespace": self.namespace,
            "workflow.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "workflow.creationTimestamp": iso(self.created_at),
        }.get(ref)
