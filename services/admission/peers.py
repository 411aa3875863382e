"""The other services as the admission core sees them. Implementations: clients.py (gRPC), and fakes in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from treadle.errors import Unavailable
from treadle.outputs.v1.outputs_pb2 import ReportStepOutputsRequest
from treadle.services.admission.templates import TemplateReader
from treadle.services.artifacts.gc_plan import GcPlan
from treadle.workflow.v1 import workflow_pb2


@dataclass(frozen=True)
class StatusSnapshot:
    status: workflow_pb2.WorkflowStatus
    # Increases with every change the scheduler stores; 0 before the scheduler has the workflow.
    # None when the scheduler did not say (BatchGetWorkflowStatus does not).
    resource_version: int | None


class Verb(Enum):
    """The lifecycle changes SchedulerService makes to a workflow it runs."""

    SUSPEND = "suspend"
    RESUME = "resume"
    STOP = "stop"
    TERMINATE = "terminate"
    SET_NODE = "set-node"
    RETRY = "retry"


@dataclass(frozen=True)
class Control:
    """One lifecycle change, with the arguments its verb takes."""

    verb: Verb
    # RESUME and SET_NODE: the suspend node (id, name or display name).
    node: str = ""
    # STOP, TERMINATE and SET_NODE: the recorded message.
    message: str = ""
    # SET_NODE: supplied output parameters, and the node's final phase (UNSPECIFIED keeps it waiting).
    output_parameters: Mapping[str, str] = field(default_factory=dict)
    phase: workflow_pb2.NodePhase.ValueType = workflow_pb2.NODE_PHASE_UNSPECIFIED


class Scheduler(Protocol):
    async def start_workflow(self, workflow: workflow_pb2.Workflow) -> None:
        """Idempotent per workflow uid."""
        ...

    async def get_status(self, name: str, *, omit_nodes: bool = False) -> StatusSnapshot:
        """Raises NotFound when the scheduler does not know the workflow."""
        ...

    async def batch_status(self, names: list[str]) -> dict[str, StatusSnapshot]:
        """Statuses without node maps (nor resource versions); unknown names are left out."""
        ...

    def watch(self, name: str, after_version: int = -1) -> AsyncIterator[StatusSnapshot]:
        """The current status, then each change, skipping versions up to after_version; ends once final."""
        ...

    async def delete(self, name: str) -> None:
        """Stops running steps and forgets the workflow. Raises NotFound when unknown."""
        ...

    async def control(self, name: str, control: Control) -> None:
        """Applies a lifecycle change; FailedPrecondition when the workflow's state does not allow it."""
        ...


class OutputsReader(Protocol):
    async def get_report(self, workflow: str, node_id: str) -> ReportStepOutputsRequest:
        """The latest attempt's report; raises NotFound when none was recorded."""
        ...

    async def delete_workflow_outputs(self, workflow: str) -> int: ...


class ArtifactReader(Protocol):
    def download(self, key: str, repository: str = "") -> AsyncIterator[bytes]:
        """The object's bytes in chunks (of a named repository, or the default one);
        raises DataLoss when they do not match the stored digest."""
        ...

    async def check_repository(self, name: str) -> None:
        """Raises NotFound when the server has no artifact repository of that name (artifactRepositoryRef)."""
        ...

    async def run_gc(self, plan: GcPlan) -> int:
        """Carries out an artifact GC plan (services/artifacts/gc_plan.py); returns how many objects went."""
        ...


class NotConnected:
    """Stands in for every peer until the app knows the addresses: each call is Unavailable."""

    def __init__(self, service: str) -> None:
        self._service = service

    def _fail(self) -> Unavailable:
        return Unavailable(f"no address is configured for the {self._service} service")

    async def start_workflow(self, workflow: workflow_pb2.Workflow) -> None:
        raise self._fail()

    async def get_status(self, name: str, *, omit_nodes: bool = False) -> StatusSnapshot:
        raise self._fail()

    async def batch_status(self, names: list[str]) -> dict[str, StatusSnapshot]:
        raise self._fail()

    async def watch(self, name: str, after_version: int = -1) -> AsyncIterator[StatusSnapshot]:
        raise self._fail()
        yield  # an async generator, like the real one

    async def delete(self, name: str) -> None:
        raise self._fail()

    async def control(self, name: str, control: Control) -> None:
        raise self._fail()

    async def get_report(self, workflow: str, node_id: str) -> ReportStepOutputsRequest:
        raise self._fail()

    async def delete_workflow_outputs(self, workflow: str) -> int:
        raise self._fail()

    async def download(self, key: str, repository: str = "") -> AsyncIterator[bytes]:
        raise self._fail()
        yield

    async def check_repository(self, name: str) -> None:
        raise self._fail()

    async def run_gc(self, plan: GcPlan) -> int:
        raise self._fail()

    async def get_spec(self, name: str) -> dict[str, Any]:
        raise self._fail()


@dataclass
class Peers:
    scheduler: Scheduler
    outputs: OutputsReader
    artifacts: ArtifactReader
    templates: TemplateReader

    @classmethod
    def not_connected(cls) -> Peers:
        return cls(
            NotConnected("scheduler"), NotConnected("outputs"), NotConnected("artifacts"), NotConnected("templates")
        )
