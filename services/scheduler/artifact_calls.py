"""What the scheduler asks of ArtifactService, as its core sees it (no grpc here; artifacts_client.py is the gRPC side).

- the text of large results and parameter values (large_values.py);
- artifact GC when a workflow completes (``artifactGC.strategy: OnWorkflowCompletion``);
  admission runs the OnWorkflowDeletion plan when a workflow is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from treadle.errors import Unavailable
from treadle.services.artifacts.gc_plan import GcPlan
from treadle.services.scheduler.engine.model import Node, WorkflowState
from treadle.services.scheduler.status import workflow_status
from treadle.spec.artifact_gc import wants_artifact_gc
from treadle.spec.convert import spec_from_dict
from treadle.workflow.v1 import workflow_pb2

__all__ = ["ArtifactCalls", "NoArtifactService", "gc_workflow", "wants_artifact_gc"]


class ArtifactCalls(Protocol):
    async def load_value(self, ref: dict[str, Any]) -> str:
        """The exact text of a large value's blob (a StoredArtifact in its JSON form)."""
        ...

    async def run_gc(self, plan: GcPlan) -> int:
        """Carry out an artifact GC plan; return how many objects were deleted."""
        ...


class NoArtifactService:
    """Stands in until the scheduler knows ArtifactService's address: every call is Unavailable."""

    async def load_value(self, ref: dict[str, Any]) -> str:
        raise Unavailable("no address is configured for the artifacts service")

    async def run_gc(self, plan: GcPlan) -> int:
        raise Unavailable("no address is configured for the artifacts service")


def gc_workflow(state: WorkflowState, spec: dict[str, Any], nodes: Iterable[Node]) -> workflow_pb2.Workflow:
    """The workflow as gc_plan reads it: its spec, and its nodes' stored output artifacts."""
    workflow = workflow_pb2.Workflow(spec=spec_from_dict(spec), status=workflow_status(state, nodes))
    workflow.metadata.name = state.name
    workflow.metadata.uid = state.uid
    return workflow
