"""The other services as the admission core sees them. Implementations: clients.py (gRPC), and fakes in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from treadle.errors import Unavailable
from treadle.outputs.v1.outputs_pb2 import ReportStepOutputsRequest
from treadle.workflow.v1 import workflow_pb2


@dataclass(frozen=True)
class StatusSnapshot:
    status: workflow_pb2.WorkflowStatus
    # Increases with every change the scheduler stores.
    resource_version: int


class Scheduler(Protocol):
    async def start_workflow(self, workflow: workflow_pb2.Workflow) -> None:
        """Idempotent per workflow uid."""
        ...

    async def get_status(self, name: str) -> StatusSnapshot:
        """Raises NotFound when the scheduler does not know the workflow."""
        ...

    async def batch_status(self, names: list[str]) -> dict[str, workflow_pb2.WorkflowStatus]:
        """Statuses without node maps; unknown names are left out."""
        ...

    def watch(self, name: str) -> AsyncIterator[StatusSnapshot]:
        """The current status, then each change; ends once the workflow is final."""
        ...

    async def delete(self, name: str) -> None:
        """Stops running steps and forgets the workflow. Raises NotFound when unknown."""
        ...


class OutputsReader(Protocol):
    async def get_report(self, workflow: str, node_id: str) -> ReportStepOutputsRequest:
        """The latest attempt's report; raises NotFound when none was recorded."""
        ...

    async def delete_workflow_outputs(self, workflow: str) -> int: ...


class ArtifactReader(Protocol):
    def download(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises DataLoss when they do not match the stored digest."""
        ...


class NotConnected:
    """Stands in for every peer until the app knows the addresses: each call is Unavailable."""

    def __init__(self, service: str) -> None:
        self._service = service

    def _fail(self) -> Unavailable:
        return Unavailable(f"no address is configured for the {self._service} service")

    async def start_workflow(self, workflow: workflow_pb2.Workflow) -> None:
        raise self._fail()

    async def get_status(self, name: str) -> StatusSnapshot:
        raise self._fail()

    async def batch_status(self, names: list[str]) -> dict[str, workflow_pb2.WorkflowStatus]:
        raise self._fail()

    async def watch(self, name: str) -> AsyncIterator[StatusSnapshot]:
        raise self._fail()
        yield  # an async generator, like the real one

    async def delete(self, name: str) -> None:
        raise self._fail()

    async def get_report(self, workflow: str, node_id: str) -> ReportStepOutputsRequest:
        raise self._fail()

    async def delete_workflow_outputs(self, workflow: str) -> int:
        raise self._fail()

    async def download(self, key: str) -> AsyncIterator[bytes]:
        raise self._fail()
        yield


@dataclass
class Peers:
    scheduler: Scheduler
    outputs: OutputsReader
    artifacts: ArtifactReader

    @classmethod
    def not_connected(cls) -> Peers:
        return cls(NotConnected("scheduler"), NotConnected("outputs"), NotConnected("artifacts"))
