"""The executor host's protocol: JSON lines on its stdin (requests) and stdout (events).

Requests:
    {"op": "launch", "workflow", "node_id", "attempt", "token", "services": {"scheduler", "artifacts",
     "outputs", ...}, "deadline_seconds", "traceparent", ...}   (the fields of a runtime's LaunchSpec)
    {"op": "cancel", "workflow", "node_id", "attempt", "reason"}
Events:
    {"event": "exit", "workflow", "node_id", "attempt", "reported": bool, "message": str}

Unknown fields are ignored, so a runtime may send the whole LaunchSpec.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from treadle.executor.launch import StepLaunch


@dataclass(frozen=True)
class LaunchRequest:
    launch: StepLaunch


@dataclass(frozen=True)
class CancelRequest:
    workflow: str
    node_id: str
    attempt: int
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.workflow, self.node_id, self.attempt)


@dataclass(frozen=True)
class ExitEvent:
    workflow: str
    node_id: str
    attempt: int
    reported: bool
    message: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.workflow, self.node_id, self.attempt)

    def encode(self) -> bytes:
        return _line({"event": "exit", **asdict(self)})

    @classmethod
    def decode(cls, line: bytes) -> ExitEvent:
        message = json.loads(line)
        if message.get("event") != "exit":
            raise ValueError(f"not an exit event: {message.get('event')!r}")
        return cls(
            workflow=str(message["workflow"]),
            node_id=str(message["node_id"]),
            attempt=int(message["attempt"]),
            reported=bool(message["reported"]),
            message=str(message.get("message", "")),
        )


def launch_line(fields: Mapping[str, Any]) -> bytes:
    """A launch request from a LaunchSpec's fields (as dataclasses.asdict gives them)."""
    return _line({**fields, "op": "launch"})


def cancel_line(workflow: str, node_id: str, attempt: int, reason: str) -> bytes:
    return _line({"op": "cancel", "workflow": workflow, "node_id": node_id, "attempt": attempt, "reason": reason})


def parse_request(line: bytes) -> LaunchRequest | CancelRequest:
    """Raises ValueError (or KeyError, TypeError) for a malformed line; the message never quotes the token."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a request must be a JSON object")
    op = message.get("op")
    if op == "launch":
        return LaunchRequest(_launch_from(message))
    if op == "cancel":
        return CancelRequest(
            workflow=str(message["workflow"]),
            node_id=str(message["node_id"]),
            attempt=int(message["attempt"]),
            reason=str(message.get("reason", "")),
        )
    raise ValueError(f"unknown op {op!r}")


def _launch_from(message: dict[str, Any]) -> StepLaunch:
    services = message["services"]
    deadline = message.get("deadline_seconds")
    return StepLaunch(
        workflow=str(message["workflow"]),
        node_id=str(message["node_id"]),
        attempt=int(message["attempt"]),
        token=str(message["token"]),
        scheduler=str(services["scheduler"]),
        artifacts=str(services["artifacts"]),
        outputs=str(services["outputs"]),
        deadline_seconds=None if deadline is None else float(deadline),
        traceparent=str(message.get("traceparent") or ""),
    )


def _line(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
