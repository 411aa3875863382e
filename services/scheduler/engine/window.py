"""Starting wide loops and DAGs a slice at a time.

A loop over 100,000 items, or a DAG with 100,000 independent tasks, would
otherwise create every node at once. Instead a TaskGroup or a DAG starts
children only while fewer than `window` pods are live (created, not yet
finished) and resumes when pods finish. What remains to start is derived
from small counters in the node (`next`, `nextRoot`) and the template, so it
survives a restart without being stored.
"""

from __future__ import annotations

from typing import Any

from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.items import item_label, item_names
from treadle.services.scheduler.engine.model import Node, NodeType

DEFAULT_WINDOW = 2048


class WindowMixin(EngineBase):
    window: int
    _starved: dict[str, None] | None
    _loop_items: dict[str, list[Any]]

    def _has_room(self) -> bool:
        return self.state.pods_total - self.state.pods_done < self.window or bool(self.state.shutdown)

    def _feed_starved(self) -> None:
        """Pods finished: let waiting loops and DAGs start more children."""
        starved = self._starved_nodes()
        while starved and self._has_room():
            node = self.nodes.get(next(iter(starved)))
            if node is None or node.done:
                starved.pop(next(iter(starved)))
                continue
            self._widen(node)
            if next(iter(starved), None) == node.id:
                break  # still starved: the window is full

    def _widen(self, node: Node) -> None:
        if node.type == NodeType.TASK_GROUP:
            self._widen_loop(node)
        elif node.type == NodeType.DAG:
            self._widen_dag(node)

    def _widen_loop(self, group: Node) -> None:
        found = self._loop_source(group)
        if found is None:
            return
        call, boundary = found
        items = self._loop_items.get(group.id)
        scope = self._scope_of(boundary)
        if items is None:
            items = self._loop_items[group.id] = self._items(call, scope)
        flags = {k: v for k, v in group.progress.items() if k in ("continueOn", "inExit")}
        while group.progress["next"] < len(items) and self._has_room():
            i = group.progress["next"]
            group.progress["next"] = i + 1
            self.nodes.put(group)
            label = f"({i}:{item_label(items[i])})"
            self._call(
                group.name + label, group.display_name + label, call, scope.with_names(item_names(items[i])),
                boundary=group.boundary_id, parent=group.id, flags=flags, expand=False,
            )  # fmt: skip
        self._mark_starved(group, group.progress["next"] < len(items))
        if group.progress["next"] >= len(items):
            self._loop_items.pop(group.id, None)

    def _loop_source(self, group: Node) -> tuple[dict[str, Any], Node] | None:
        """The step or task a loop's TaskGroup was expanded from, and the node whose scope it runs in."""
        boundary = self.nodes.get(group.boundary_id) if group.boundary_id else None
        if boundary is None:
            return None
        template = self.templates[boundary.template_name]
        calls: list[dict[str, Any]] = [c for grp in template.get("steps") or [] for c in grp or []]
        calls += (template.get("dag") or {}).get("tasks") or []
        call = next((c for c in calls if c.get("name") == group.display_name), None)
        return None if call is None else (call, boundary)

    def _mark_starved(self, node: Node, starved: bool) -> None:
        nodes = self._starved_nodes()
        if starved:
            nodes.setdefault(node.id, None)
        else:
            nodes.pop(node.id, None)

    def _starved_nodes(self) -> dict[str, None]:
        if self._starved is None:  # after a restart: find what still has children to start
            self._starved = {}
            for node in self.nodes.all():
                if node.done:
                    continue
                loop_left = node.type == NodeType.TASK_GROUP and node.progress.get("next", 0) < node.progress.get(
                    "count", 0
                )
                roots_left = node.type == NodeType.DAG and node.progress.get("nextRoot", 0) < len(self._dag_roots(node))
                if loop_left or roots_left:
                    self._starved[node.id] = None
        return self._starved
