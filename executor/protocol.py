"""The executor host's protocol: JSON lines on its stdin (requests) and stdout (events).

Requests:
    {"op": "launch", "workflow", "node_id", "attempt", "token", "services": {"scheduler", "artifacts",
     "outputs"}, "deadline_seconds", "traceparent",
     "context": {"workflow_uid", "pod_name", "artifact_repository", "template"}}
    {"op": "launch", ...} without "context": the executor fetches it with GetStepContext
    {"op": "cancel", "workflow", "node_id", "attempt", "reason"}
Events:
    {"event": "exit", "workflow", "node_id", "attempt", "reported": bool, "message": str}

Unknown fields are ignored. The context's template is Argo-shaped, as the scheduler resolved it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from treadle.config import ServiceAddresses
from treadle.errors import InvalidSpec
from treadle.executor.launch import StepLaunch
from treadle.scheduler.v1 import scheduler_pb2
from treadle.spec.convert import template_from_dict


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


class LaunchFields(Protocol):
    """What a launch line is made of (a runtime's LaunchSpec)."""

    @property
    def workflow(self) -> str: ...
    @property
    def workflow_uid(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def pod_name(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def token(self) -> str: ...
    @property
    def deadline_seconds(self) -> float | None: ...
    @property
    def traceparent(self) -> str: ...
    @property
    def template(self) -> dict[str, Any]: ...
    @property
    def artifact_repository(self) -> str: ...
    @property
    def services(self) -> ServiceAddresses: ...


def launch_line(spec: LaunchFields, *, with_context: bool = True) -> bytes:
    """A launch request, with the step's context unless with_context is False."""
    services = spec.services
    message: dict[str, Any] = {
        "op": "launch",
        "workflow": spec.workflow,
        "node_id": spec.node_id,
        "attempt": spec.attempt,
        "token": spec.token,
        "services": {"scheduler": services.scheduler, "artifacts": services.artifacts, "outputs": services.outputs},
        "deadline_seconds": spec.deadline_seconds,
        "traceparent": spec.traceparent,
    }
    if with_context:
        message["context"] = {
            "workflow_uid": spec.workflow_uid,
            "pod_name": spec.pod_name,
            "artifact_repository": spec.artifact_repository,
            "template": spec.template,
        }
    return _line(message)


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
        context=_context_from(message),
    )


def _context_from(message: dict[str, Any]) -> dict[str, Any] | None:
    """The delivered context, checked only when the step starts: a bad one fails that step, not the request."""
    context = message.get("context")
    if context is None:
        return None
    return context if isinstance(context, dict) else {"template": context}


def delivered_context(launch: StepLaunch) -> scheduler_pb2.GetStepContextResponse:
    """The context a launch brought, as GetStepContext would have answered. Raises InvalidSpec for a bad template."""
    context = launch.context or {}
    template = context.get("template")
    if not isinstance(template, dict):
        raise InvalidSpec("the launch's context has no template object", field="context.template")
    return scheduler_pb2.GetStepContextResponse(
        workflow=launch.workflow,
        workflow_uid=str(context.get("workflow_uid") or ""),
        node_id=launch.node_id,
        pod_name=str(context.get("pod_name") or ""),
        attempt=launch.attempt,
        template=template_from_dict(template),
        artifact_repository=str(context.get("artifact_repository") or ""),
    )


def _line(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
