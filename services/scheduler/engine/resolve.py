"""Resolving `{{...}}` names against finished nodes, bound inputs and loop items."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from treadle.services.scheduler.engine.model import Node
from treadle.spec.template import UnresolvedReference

Sibling = Callable[[str], "Node | None"]


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


def node_fields(node: Node) -> dict[str, str]:
    """Every `.field` a finished sibling offers, e.g. "outputs.result" or "outputs.parameters.p"."""
    fields = {
        "id": node.id,
        "status": node.phase,
        "startedAt": iso(node.started_at),
        "finishedAt": iso(node.finished_at),
    }
    for key, name in (("result", "outputs.result"), ("exitCode", "outputs.exitCode")):
        if node.outputs.get(key) is not None:
            fields[name] = str(node.outputs[key])
    if node.outputs.get("exitCode") is not None:
        fields["exitCode"] = str(node.outputs["exitCode"])
    if node.progress.get("ip"):  # a daemon's address (daemons.py)
        fields["ip"] = str(node.progress["ip"])
    for p in node.outputs.get("parameters") or []:
        if p.get("value") is not None:
            fields[f"outputs.parameters.{p['name']}"] = str(p["value"])
    if node.outputs.get("parametersJson") is not None:
        fields["outputs.parameters"] = node.outputs["parametersJson"]
    return fields


class Scope:
    """The names visible at one point: globals, the scope's inputs, finished siblings, extras."""

    def __init__(
        self,
        globals_: Callable[[str], str | None],
        inputs: dict[str, Any],
        prefix: str = "",
        sibling: Sibling | None = None,
        sibling_names: Callable[[], Iterable[str]] = tuple,
        extra: dict[str, str] | None = None,
        global_names: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self._globals = globals_
        self._inputs = inputs
        self._prefix = prefix
        self._sibling = sibling
        self._sibling_names = sibling_names
        self._extra = extra or {}
        self._global_names = global_names

    def with_names(self, extra: dict[str, str]) -> Scope:
        return Scope(
            self._globals,
            self._inputs,
            self._prefix,
            self._sibling,
            self._sibling_names,
            {**self._extra, **extra},
            self._global_names,
        )

    def lookup(self, ref: str) -> str | None:
        if ref.startswith("="):
            return self._expression(ref[1:])
        if ref in self._extra:
            return self._extra[ref]
        if ref == "inputs.parameters":
            params = [{"name": p["name"], "value": p.get("value")} for p in self._inputs.get("parameters") or []]
            return json.dumps(params, separators=(",", ":"))
        if ref.startswith("inputs.parameters."):
            return param_value(self._inputs, ref.removeprefix("inputs.parameters."))
        if ref.startswith("inputs.artifacts.") and ref.endswith(".path"):
            entry = artifact_entry(self._inputs, ref.removeprefix("inputs.artifacts.").removesuffix(".path"))
            return None if entry is None else entry.get("path")
        if self._prefix and ref.startswith(self._prefix + ".") and self._sibling is not None:
            name, _, field = ref[len(self._prefix) + 1 :].partition(".")
            node = self._sibling(name)
            return None if node is None else node_fields(node).get(field)
        return self._globals(ref)

    def artifact(self, ref: str) -> dict[str, Any]:
        """The stored artifact a `from: {{...}}` names, as an inputs.artifacts entry."""
        entry: dict[str, Any] | None = None
        if ref.startswith("inputs.artifacts."):
            entry = artifact_entry(self._inputs, ref.removeprefix("inputs.artifacts."))
        elif self._prefix and ref.startswith(self._prefix + ".") and ".outputs.artifacts." in ref and self._sibling:
            name, _, art = ref[len(self._prefix) + 1 :].partition(".outputs.artifacts.")
            node = self._sibling(name)
            entry = None if node is None else artifact_entry(node.outputs, art)
        elif ref.startswith("workflow.outputs.artifacts."):
            value = self._globals(ref)
            entry = json.loads(value) if value else None
        if entry is None:
            raise UnresolvedReference(ref)
        return entry

    def flat(self) -> dict[str, Any]:
        """Every visible name with its value, for expressions."""
        names: dict[str, Any] = dict(self._global_names())
        for p in self._inputs.get("parameters") or []:
            names[f"inputs.parameters.{p['name']}"] = p.get("value")
        for a in self._inputs.get("artifacts") or []:
            names[f"inputs.artifacts.{a['name']}.path"] = a.get("path", "")
        if self._prefix and self._sibling is not None:
            for name in self._sibling_names():
                node = self._sibling(name)
                if node is not None:
                    for field, value in node_fields(node).items():
                        names[f"{self._prefix}.{name}.{field}"] = value
        names.update(self._extra)
        return names

    def _expression(self, expression: str) -> str:
        from treadle.expr import env_from_flat, evaluate, render

        return render(evaluate(expression, env_from_flat(self.flat())), expression=expression)


def aggregate(children: Iterable[Node]) -> dict[str, Any]:
    """A loop's outputs: JSON lists of the succeeded children's results and parameters."""
    results: list[Any] = []
    per_param: dict[str, list[Any]] = {}
    param_maps: list[dict[str, str]] = []
    for child in children:
        if child.phase != "Succeeded":
            continue
        if child.outputs.get("result") is not None:
            results.append(_as_json_value(str(child.outputs["result"])))
        params = {p["name"]: str(p.get("value", "")) for p in child.outputs.get("parameters") or []}
        if params:
            param_maps.append(params)
        for name, value in params.items():
            per_param.setdefault(name, []).append(_as_json_value(value))
    out: dict[str, Any] = {
        "result": json.dumps(results, separators=(",", ":")),
        "parametersJson": json.dumps(param_maps, separators=(",", ":")),
    }
    if per_param:
        out["parameters"] = [{"name": k, "value": json.dumps(v, separators=(",", ":"))} for k, v in per_param.items()]
    return out


def _as_json_value(text: str) -> Any:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text
    return value
