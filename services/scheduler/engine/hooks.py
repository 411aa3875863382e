"""Lifecycle hooks triggered by an expression ("running", "success", any name but "exit").

A hook is armed when its workflow or step starts, fires at most once when its
expression becomes true, and runs its template as a node of its own. The
workflow completes only after every hook node it started has finished.
"""

from __future__ import annotations

from typing import Any

from treadle.errors import TreadleError
from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import Node


class HooksMixin(EngineBase):
    def _arm_hooks(self, owner_name: str, hooks: dict[str, Any], boundary: str) -> None:
        for name, hook in sorted(hooks.items()):
            if name == "exit" or not hook.get("expression"):
                continue
            self.state.hooks.append(
                {
                    "node": f"{owner_name}.hooks.{name}",
                    "boundary": boundary,
                    "expression": hook["expression"],
                    "call": {k: v for k, v in hook.items() if k != "expression"},
                }
            )

    def _fire_hooks(self) -> bool:
        if not self.state.hooks or self.state.shutdown == "Terminate" or self.state.done:
            return False
        from treadle.expr import env_from_flat, evaluate

        fired = False
        for hook in list(self.state.hooks):
            boundary = self.nodes.get(hook["boundary"]) if hook["boundary"] else None
            scope = self._scope_of(boundary)
            try:
                due = evaluate(hook["expression"], env_from_flat(scope.flat())) is True
            except TreadleError:
                due = False  # names that do not exist yet (a step not started) make the hook wait
            if not due:
                continue
            self.state.hooks.remove(hook)
            self.state.open_hooks += 1
            name = hook["node"]
            call = {"name": name.rsplit(".", 1)[-1], **hook["call"]}
            self._call(name, name, call, scope, boundary=hook["boundary"], parent="", flags={"hook": True})
            fired = True
        return fired

    def _hook_done(self, node: Node) -> None:
        self.state.open_hooks = max(0, self.state.open_hooks - 1)
        if self.state.completing and self.state.open_hooks == 0:
            self.state.completing = False
            exit_node = self.nodes.get(self.state.exit_node) if self.state.exit_node else None
            self._complete_workflow(exit_node)
