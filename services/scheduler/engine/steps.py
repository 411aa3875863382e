"""Steps templates: groups run one after another, the steps inside a group in parallel."""

from __future__ import annotations

from typing import Any

from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import Node, NodePhase, NodeType
from treadle.services.scheduler.engine.resolve import Scope, aggregate


class StepsMixin(EngineBase):
    _group_indexes: dict[str, dict[str, int]]

    def _start_steps(self, steps: Node) -> None:
        steps.progress["group"] = -1
        self._next_group(steps)

    def _next_group(self, steps: Node) -> None:
        groups = self.templates[steps.template_name].get("steps") or []
        gi = steps.progress["group"] + 1
        steps.progress["group"] = gi
        self.nodes.put(steps)
        if gi >= len(groups):
            self._finish(steps, NodePhase.SUCCEEDED)
            return
        calls: list[dict[str, Any]] = groups[gi] or []
        group = self._new_node(
            f"{steps.name}[{gi}]", f"[{gi}]", NodeType.STEP_GROUP, steps.template_name,
            boundary=steps.id, parent=steps.id, phase=NodePhase.RUNNING,
            progress={"pending": len(calls), "failed": ""},
        )  # fmt: skip
        scope = self._steps_scope(steps)
        for call in calls:
            self._call(f"{group.name}.{call['name']}", call["name"], call, scope, boundary=steps.id, parent=group.id)
        if not calls:
            self._finish(group, NodePhase.SUCCEEDED)

    def _steps_scope(self, steps: Node) -> Scope:
        index = self._group_index(steps.template_name)

        def sibling(name: str) -> Node | None:
            gi = index.get(name)
            return None if gi is None else self._node_named(f"{steps.name}[{gi}].{name}")

        return Scope(self._global, steps.inputs, "steps", sibling, lambda: list(index), global_names=self._global_names)

    def _group_index(self, template_name: str) -> dict[str, int]:
        index = self._group_indexes.get(template_name)
        if index is None:
            groups = self.templates[template_name].get("steps") or []
            index = {s["name"]: gi for gi, group in enumerate(groups) for s in group or []}
            self._group_indexes[template_name] = index
        return index

    def _group_child_done(self, group: Node, child: Node) -> None:
        """A step group or a loop's task group: done when every child is."""
        group.progress["pending"] -= 1
        if not self._tolerated(child) and not group.progress["failed"]:
            group.progress["failed"] = child.id
        self.nodes.put(group)
        if group.progress["pending"] > 0:
            return
        if group.type == NodeType.TASK_GROUP:
            group.outputs = aggregate(n for n in (self.nodes.read(c) for c in group.children) if n is not None)
        failed = self.nodes.get(group.progress["failed"]) if group.progress["failed"] else None
        if failed is None:
            self._finish(group, NodePhase.SUCCEEDED)
        else:
            phase = failed.phase if group.type == NodeType.TASK_GROUP else NodePhase.FAILED
            self._finish(group, phase, self._failure_message(failed))

    def _steps_group_done(self, steps: Node, group: Node) -> None:
        if group.phase == NodePhase.SUCCEEDED:
            self._next_group(steps)
        else:
            self._finish(steps, NodePhase.FAILED, group.message)
