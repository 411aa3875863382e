"""DAG templates: tasks start when their `dependencies` or `depends` condition is met."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import Node, NodePhase, NodeType
from treadle.services.scheduler.engine.resolve import Scope
from treadle.spec import depends as dep


@dataclass(frozen=True)
class DagIndex:
    tasks: dict[str, dict[str, Any]]
    deps: dict[str, list[str]]
    conditions: dict[str, dep.Expr | None]
    dependents: dict[str, list[str]]
    roots: list[str]
    targets: list[str]
    # A failure of this task is expected by the DAG (continueOn, or a dependent asks for it).
    handled: dict[str, bool]
    fail_fast: bool


def build_index(template: dict[str, Any]) -> DagIndex:
    dag = template.get("dag") or {}
    all_tasks = {t["name"]: t for t in dag.get("tasks") or []}
    conditions: dict[str, dep.Expr | None] = {}
    deps: dict[str, list[str]] = {}
    for name, task in all_tasks.items():
        if task.get("depends"):
            expr = dep.parse(task["depends"])
            conditions[name], deps[name] = expr, dep.tasks_of(expr)
        elif task.get("dependencies"):
            names = list(task["dependencies"])
            conditions[name], deps[name] = dep.from_dependencies(names), names
        else:
            conditions[name], deps[name] = None, []
    wanted = set(all_tasks)
    targets = str(dag.get("target") or "").split()
    if targets:
        wanted, stack = set(), list(targets)
        while stack:
            t = stack.pop()
            if t not in wanted and t in all_tasks:
                wanted.add(t)
                stack.extend(deps[t])
    tasks = {n: t for n, t in all_tasks.items() if n in wanted}
    dependents: dict[str, list[str]] = {n: [] for n in tasks}
    for name in tasks:
        for d in deps[name]:
            dependents[d].append(name)
    if not targets:
        targets = sorted(n for n in tasks if not dependents[n])
    asked: set[str] = set()
    for name in tasks:
        condition = conditions[name]
        if condition is not None:
            asked |= dep.failures_asked(condition)
    handled = {}
    for name, task in tasks.items():
        on = task.get("continueOn") or {}
        handled[name] = bool(on.get("failed") or on.get("error") or name in asked)
    roots = [n for n in tasks if not deps[n]]
    fail_fast = dag.get("failFast") is not False
    return DagIndex(tasks, deps, conditions, dependents, roots, targets, handled, fail_fast)


def _settled(node: Node) -> bool:
    """Done, or a daemon that is up (daemons.py): either way its dependents may go on."""
    return node.done or bool(node.progress.get("daemoned"))


# Phases a task's own outcome decides its branch with; Skipped and Omitted tasks inherit theirs.
COMPLETED = (NodePhase.SUCCEEDED, NodePhase.FAILED, NodePhase.ERROR)


class DagMixin(EngineBase):
    _dag_indexes: dict[str, DagIndex]
    _deps_left: dict[tuple[str, str], int]

    def _mark_starved(self, node: Node, starved: bool) -> None:
        raise NotImplementedError

    def _has_room(self) -> bool:
        raise NotImplementedError

    def _dag_index(self, template_name: str) -> DagIndex:
        index = self._dag_indexes.get(template_name)
        if index is None:
            index = build_index(self.templates[template_name])
            self._dag_indexes[template_name] = index
        return index

    def _start_dag(self, dag: Node) -> None:
        dag.progress.update({"running": 0, "failed": "", "nextRoot": 0})
        self.nodes.put(dag)
        index = self._dag_index(dag.template_name)
        if not index.tasks:
            self._finish(dag, NodePhase.SUCCEEDED)
            return
        self._widen_dag(dag)

    def _dag_roots(self, dag: Node) -> list[str]:
        return self._dag_index(dag.template_name).roots

    def _widen_dag(self, dag: Node) -> None:
        """Start root tasks while the window has room."""
        roots = self._dag_roots(dag)
        while dag.progress["nextRoot"] < len(roots) and self._has_room() and not dag.done:
            task = roots[dag.progress["nextRoot"]]
            dag.progress["nextRoot"] += 1
            self._start_task(dag, task)
        self._mark_starved(dag, dag.progress["nextRoot"] < len(roots))

    def _task_node(self, dag: Node, task: str) -> Node | None:
        return self._node_named(f"{dag.name}.{task}")

    def _dag_scope(self, dag: Node) -> Scope:
        index = self._dag_index(dag.template_name)
        return Scope(
            self._global, dag.inputs, "tasks", lambda name: self._task_node(dag, name), lambda: list(index.tasks),
            global_names=self._global_names,
        )  # fmt: skip

    def _start_task(self, dag: Node, task: str) -> None:
        dag.progress["running"] += 1
        self.nodes.put(dag)
        call = self._dag_index(dag.template_name).tasks[task]
        self._call(f"{dag.name}.{task}", task, call, self._dag_scope(dag), boundary=dag.id, parent=dag.id)

    def _dag_child_done(self, dag: Node, child: Node) -> None:
        index = self._dag_index(dag.template_name)
        progress = dag.progress
        progress["running"] -= 1
        task = child.display_name
        if not self._tolerated(child) and not index.handled.get(task) and not progress["failed"]:
            progress["failed"] = child.id
        worklist = [task]
        while worklist:
            for candidate in index.dependents.get(worklist.pop(), []):
                if not self._last_dependency_done(dag, candidate, index) or self._task_node(dag, candidate):
                    continue
                outcomes = self._outcomes(dag, index.deps[candidate])
                if outcomes is None:
                    continue  # a dependency never started (failFast)
                condition = index.conditions[candidate]
                if condition is None or dep.evaluate(condition, outcomes):
                    if not (index.fail_fast and progress["failed"]):
                        self._start_task(dag, candidate)
                    continue
                node = self._new_node(
                    f"{dag.name}.{candidate}", candidate, NodeType.SKIPPED, index.tasks[candidate]["template"],
                    boundary=dag.id, parent=dag.id, phase=NodePhase.OMITTED,
                )  # fmt: skip
                node.message = "omitted: depends condition not met"
                node.finished_at = node.started_at
                self.nodes.put(node)
                worklist.append(candidate)
        self.nodes.put(dag)
        if progress["running"] == 0 and progress.get("nextRoot", len(index.roots)) >= len(index.roots):
            phase, origin = self._assess(dag, index)
            if phase == NodePhase.SUCCEEDED:
                self._finish(dag, NodePhase.SUCCEEDED)
            else:
                failed = self.nodes.get(origin) if origin else None
                self._finish(dag, phase, self._failure_message(failed) if failed else f"{dag.name} {phase.lower()}")

    def _last_dependency_done(self, dag: Node, task: str, index: DagIndex) -> bool:
        """Count down task's unfinished dependencies; True once none is left.

        The counts live in memory only: a restarted engine recounts a task's
        dependencies the first time one of them finishes. That keeps each
        finished task's cost proportional to its dependents, not to the DAG.
        """
        key = (dag.id, task)
        left = self._deps_left.get(key)
        if left is None:
            left = sum(1 for d in index.deps[task] if not ((n := self._task_node(dag, d)) and _settled(n)))
        else:
            left -= 1
        if left > 0:
            self._deps_left[key] = left
            return False
        self._deps_left.pop(key, None)
        return True

    def _outcomes(self, dag: Node, names: list[str]) -> dict[str, dep.TaskOutcome] | None:
        outcomes = {}
        for name in names:
            node = self._task_node(dag, name)
            if node is None or not _settled(node):
                return None
            on = node.progress.get("continueOn") or {}
            phases = [c.phase for c in (self.nodes.read(i) for i in node.children) if c is not None]
            outcomes[name] = dep.TaskOutcome(
                phase=node.phase,
                continue_on_failed=bool(on.get("failed")),
                continue_on_error=bool(on.get("error")),
                any_succeeded=NodePhase.SUCCEEDED in phases,
                all_failed=bool(phases) and all(p == NodePhase.FAILED for p in phases),
                daemoned=bool(node.progress.get("daemoned")),
            )
        return outcomes

    def _assess(self, dag: Node, index: DagIndex) -> tuple[str, str]:
        """The DAG's phase from its target tasks' branches, as Argo decides it."""
        memo: dict[str, tuple[str, str]] = {}

        def branch(task: str) -> tuple[str, str]:
            if task in memo:
                return memo[task]
            node = self._task_node(dag, task)
            if node is not None and node.phase in COMPLETED:
                result = (node.phase, node.id)
            else:
                result = (NodePhase.SUCCEEDED, "")
                for parent in index.deps.get(task, []):
                    got = branch(parent)
                    if got[0] in (NodePhase.FAILED, NodePhase.ERROR):
                        result = got
                        break
                if node is None and result[0] == NodePhase.SUCCEEDED:
                    result = (NodePhase.FAILED, dag.progress.get("failed", ""))  # never started: failFast
            memo[task] = result
            return result

        for target in index.targets:
            phase, origin = branch(target)
            if phase in (NodePhase.FAILED, NodePhase.ERROR):
                node = self.nodes.get(origin) if origin else None
                if node is not None and node.display_name == target and self._tolerated(node):
                    continue
                return phase, origin
        return NodePhase.SUCCEEDED, ""
