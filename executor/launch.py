"""What the executor needs to run one step attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepLaunch:
    workflow: str
    node_id: str
    attempt: int
    # Scoped to (workflow, node_id, attempt); sent as metadata, never logged or passed to the command.
    token: str = field(repr=False)
    # host:port of the services the executor calls.
    scheduler: str
    artifacts: str
    outputs: str
    # Seconds from the executor's start after which the command is killed; None means no limit.
    deadline_seconds: float | None = None
    # W3C traceparent of the node's span, forwarded as gRPC metadata.
    traceparent: str = ""
    # The step's context when the runtime delivered it with the launch (executor/protocol.py);
    # else init fetches it with GetStepContext.
    context: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.workflow, self.node_id, self.attempt)

    def describe(self) -> str:
        return f"{self.workflow}/{self.node_id} attempt {self.attempt}"
