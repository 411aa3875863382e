"""A tiny driver that runs the pure engine to completion with scripted pod outcomes and a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treadle.services.scheduler.engine import Decisions, Launch, MemoryNodeTable, Node, WorkflowEngine, WorkflowState
from treadle.services.scheduler.engine.nodes import Locks, MemoCache
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


def fail(code: int) -> Behaviour:
    return lambda ctx: ("Failed", {"exitCode": str(code)}, f"exit code {code}")


class Run:
    def __init__(
        self,
        manifest: str,
        parameters: dict[str, str] | None = None,
        memo: MemoCache | None = None,
        locks: Locks | None = None,
        window: int = 2048,
    ) -> None:
        wf = validate_workflow(load_manifest(manifest), parameters=parameters)
        self.name = wf["metadata"].get("name") or "wf"
        self.table = MemoryNodeTable()
        self.clock = 1000.0
        self.engine = WorkflowEngine(
            WorkflowState(self.name, "uid-1"),
            wf["spec"],
            self.table,
            now=lambda: self.clock,
            memo=memo,
            locks=locks,
            window=window,
        )
        self.launched: list[str] = []
        self.cancelled: list[str] = []
        self.deadlines: dict[str, float | None] = {}
        self.pending: list[Launch] = []
        self.hold: set[str] = set()

    def take(self, decisions: Decisions | None) -> None:
        assert decisions is not None
        self.pending += decisions.launches
        self.cancelled += [self.display(c.node_id) for c in decisions.cancels]

    def display(self, node_id: str) -> str:
        node = self.table.get(node_id)
        return node.display_name if node else node_id

    def start(self) -> Run:
        self.take(self.engine.start())
        return self

    def run(self, behaviour: Behaviour = echo_args, by_step: dict[str, Behaviour] | None = None) -> Run:
        """Run every launched pod with its behaviour, firing timers when nothing else can happen."""
        if self.engine.state.phase == "Pending":
            self.start()
        while True:
            launch = self._next_ready()
            if launch is not None:
                node = self.table.get(launch.node_id)
                assert node is not None
                if node.done:
                    continue
                self.launched.append(node.display_name)
                self.deadlines[node.display_name] = launch.deadline_seconds
                ctx = self.engine.step_context(launch.node_id)
                key = node.display_name.split("(")[0]
                phase, outputs, message = (by_step or {}).get(node.display_name, (by_step or {}).get(key, behaviour))(
                    ctx
                )
                self.take(self.engine.complete_pod(launch.node_id, launch.attempt, phase, outputs, message))
                continue
            timers = self.engine.state.timers
            if not timers or self.engine.state.done:
                return self
            key = min(timers, key=lambda k: timers[k])
            self.clock = max(self.clock, timers[key])
            self.take(self.engine.on_timer(key))

    def _next_ready(self) -> Launch | None:
        if not self.hold:
            return self.pending.pop(0) if self.pending else None
        for launch in self.pending:
            if self.display(launch.node_id) not in self.hold:
                self.pending.remove(launch)
                return launch
        return None

    def node(self, display_name: str) -> Node:
        matches = [n for n in self.table.all() if n.display_name == display_name]
        assert len(matches) == 1, f"{display_name}: {len(matches)} nodes: {[n.name for n in self.table.all()]}"
        return matches[0]

    def has(self, display_name: str) -> bool:
        return any(n.display_name == display_name for n in self.table.all())

    @property
    def phase(self) -> str:
        return self.engine.state.phase
