"""The Runtime seam: how the scheduler starts and stops a step's executor.

Every call is idempotent per (workflow, node, attempt), since the scheduler
may repeat a call after a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from treadle.config import ServiceAddresses


@dataclass(frozen=True)
class LaunchSpec:
    """What a runtime needs to start one step attempt's executor."""

    workflow: str
    workflow_uid: str
    node_id: str
    pod_name: str
    attempt: int
    # Step token, scoped to (workflow, node_id, attempt); the executor sends it as metadata.
    token: str
    services: ServiceAddresses
    # The resolved template (Argo-shaped dict). Runtimes read image, resources and
    # the like from it. A pod's executor fetches its own copy through GetStepContext;
    # the local runtime hands it to its executor host with the launch.
    template: dict[str, Any] = field(default_factory=dict)
    # The workflow's spec.artifactRepositoryRef.key; "" for the server's default repository.
    artifact_repository: str = ""
    # Seconds the step may run before the runtime kills it; None means no limit.
    deadline_seconds: float | None = None
    # W3C traceparent of the node's span, passed to the executor as TRACEPARENT.
    traceparent: str = ""
    # The workflow's spec.volumes (Argo-shaped), for the template's volumeMounts.
    volumes: list[dict[str, Any]] = field(default_factory=list)
    # The workflow has daemon steps: its pods must reach one another by address ({{steps.X.ip}}).
    daemons: bool = False


@dataclass(frozen=True)
class StepExit:
    """A step attempt's executor has exited."""

    workflow: str
    node_id: str
    attempt: int
    # True when the executor's report reached OutputService before it exited.
    reported: bool
    # Why the executor failed, when reported is False.
    message: str = ""


@dataclass(frozen=True)
class StepDaemoned:
    """A daemon step (`daemon: true`) is up: the steps after it may start and reach it at ip."""

    workflow: str
    node_id: str
    attempt: int
    # An address the workflow's other steps can reach the daemon at.
    ip: str


ExitCallback = Callable[[StepExit], Awaitable[None]]
DaemonCallback = Callable[[StepDaemoned], Awaitable[None]]


class Runtime(Protocol):
    """Launches executors. Implementations: local, docker, kubernetes, fake."""

    name: str

    async def start(self, on_exit: ExitCallback, on_daemoned: DaemonCallback | None = None) -> None:
        """Prepare the runtime; on_exit is called once per launched attempt.

        on_daemoned is called when a daemon step's container runs (runtimes that run daemons only).
        """

    async def launch(self, spec: LaunchSpec) -> None:
        """Start the attempt's executor. Launching a running attempt again does nothing.

        A runtime whose `delivers_context` is true hands the executor the step's context (template,
        pod name, repository) with the launch, so that it need not call GetStepContext.
        """

    async def cancel(self, workflow: str, node_id: str, attempt: int, reason: str) -> None:
        """Kill the attempt (and every process it started). Unknown attempts are ignored."""

    async def cleanup(self, workflow: str) -> None:
        """Remove everything the runtime keeps for a finished or deleted workflow."""

    async def close(self) -> None:
        """Stop every running attempt and release the runtime's resources."""
