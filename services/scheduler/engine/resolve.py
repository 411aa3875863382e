"""Resolving `{{...}}` names against finished nodes and bound inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from treadle.services.scheduler.engine.model import Node, NodeType
from treadle.spec.template import UnresolvedReference

NodeByName = Callable[[str, str], "Node | None"]


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts is not None else ""


def param_value(block: dict[str, Any], name: str) -> str | None:
    for p in block.get("parameters") or []:
        if p.get("name") == name:
            value = p.get("value")
            return None if value is None else str(value)
    return None


def artifact_entry(block: dict[str, Any], name: str) -> dict[str, Any] | None:
    for a in block.get("artifacts") or []:
        if a.get("name") == name:
            return dict(a)
    return None


def node_field(node: Node, rest: str) -> str | None:
    """A node's value for the part after `steps.X.` or `tasks.X.`."""
    if rest == "id":
        return node.id
    if rest == "status":
        return node.phase
    if rest == "startedAt":
        return iso(node.started_at)
    if rest == "finishedAt":
        return iso(node.finished_at)
    if rest == "outputs.result":
        return node.outputs.get("result")
    if rest == "outputs.exitCode":
        return node.outputs.get("exitCode")
    if rest.startswith("outputs.parameters."):
        return param_value(node.outputs, rest.removeprefix("outputs.parameters."))
    return None


class Scope:
    """The names visible inside one steps or dag node (or a pod's template)."""

    def __init__(
        self,
        globals_: Callable[[str], str | None],
        inputs: dict[str, Any],
        sibling: Callable[[str, str], Node | None] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self._globals = globals_
        self._inputs = inputs
        self._sibling = sibling
        self._extra = extra or {}

    def lookup(self, ref: str) -> str | None:
        if ref in self._extra:
            return self._extra[ref]
        if ref.startswith("inputs.parameters."):
            return param_value(self._inputs, ref.removeprefix("inputs.parameters."))
        if ref.startswith("inputs.artifacts.") and ref.endswith(".path"):
            entry = artifact_entry(self._inputs, ref.removeprefix("inputs.artifacts.").removesuffix(".path"))
            return None if entry is None else entry.get("path")
        if ref.startswith(("steps.", "tasks.")) and self._sibling is not None:
            prefix, _, rest = ref.partition(".")
            name, _, field = rest.partition(".")
            node = self._sibling(prefix, name)
            return None if node is None else node_field(node, field)
        return self._globals(ref)

    def artifact(self, ref: str) -> dict[str, Any]:
        """The stored artifact a `from: {{...}}` names, as an inputs.artifacts entry."""
        if ref.startswith("inputs.artifacts."):
            entry = artifact_entry(self._inputs, ref.removeprefix("inputs.artifacts."))
        elif ref.startswith(("steps.", "tasks.")) and ".outputs.artifacts." in ref and self._sibling is not None:
            prefix, _, rest = ref.partition(".")
            name, _, art = rest.partition(".outputs.artifacts.")
            node = self._sibling(prefix, name)
            entry = None if node is None else artifact_entry(node.outputs, art)
        else:
            entry = None
        if entry is None:
            raise UnresolvedReference(ref)
        return entry


def outputs_json(node: Node) -> str:
    return json.dumps(node.outputs, sort_keys=True)


def is_pod(node: Node) -> bool:
    return node.type == NodeType.POD
