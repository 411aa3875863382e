"""A tiny driver that runs the pure engine to completion with scripted pod outcomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treadle.services.scheduler.engine import MemoryNodeTable, Node, WorkflowEngine, WorkflowState
from treadle.spec.manifest import load_manifest
from treadle.spec.validate import validate_workflow

# A pod behaviour: resolved template -> (phase, outputs, message)
Behaviour = Callable[[dict[str, Any]], tuple[str, dict[str, Any], str]]


def echo_args(ctx: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """Succeed with result = the container's last arg, and every declared output parameter = that too."""
    body = ctx.get("container") or ctx.get("script") or {}
    text = (body.get("args") or body.get("command") or [""])[-1]
    params = [{"name": p["name"], "value": text} for p in (ctx.get("outputs") or {}).get("parameters") or []]
    return "Succeeded", {"result": text, "exitCode": "0", "parameters": params}, ""


class Run:
    def __init__(self, manifest: str, parameters: dict[str, str] | None = None) -> None:
        wf = validate_workflow(load_manifest(manifest), parameters=parameters)
        self.name = wf["metadata"].get("name") or "wf"
        self.table = MemoryNodeTable()
        self.engine = WorkflowEngine(WorkflowState(self.name, "uid-1"), wf["spec"], self.table)
        self.launched: list[str] = []

    def run(self, behaviour: Behaviour = echo_args, by_step: dict[str, Behaviour] | None = None) -> Run:
        pending = list(self.engine.start().launches)
        while pending:
            launch = pending.pop(0)
            node = self.table.get(launch.node_id)
            assert node is not None
            self.launched.append(node.display_name)
            ctx = self.engine.step_context(launch.node_id)
            phase, outputs, message = (by_step or {}).get(node.display_name, behaviour)(ctx)
            more = self.engine.complete_pod(launch.node_id, launch.attempt, phase, outputs, message)
            assert more is not None
            pending += more.launches
        return self

    def node(self, display_name: str) -> Node:
        matches = [n for n in self.table.all() if n.display_name == display_name]
        assert len(matches) == 1, f"{display_name}: {len(matches)} nodes"
        return matches[0]

    @property
    def phase(self) -> str:
        return self.engine.state.phase
