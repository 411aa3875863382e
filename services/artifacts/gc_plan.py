"""Which objects artifact GC deletes when a workflow completes or is deleted. Pure: no I/O.

Argo's rules: ``spec.artifactGC.strategy`` applies to every output artifact
that does not set its own ``artifactGC.strategy``; the strategies are
``OnWorkflowCompletion``, ``OnWorkflowDeletion`` and ``Never`` (also what an
empty strategy means). Objects that are no output artifact (logs, imports,
large values, outputs of failed attempts) follow the workflow's strategy: when
it fires, the workflow's whole key prefix is swept, except the artifacts whose
own strategy differs.

The ArtifactService still checks every object's owner before deleting it, so
a plan can never remove another workflow's objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from treadle.errors import InvalidSpec
from treadle.spec.artifact_gc import STRATEGIES, strategy_problem
from treadle.workflow.v1 import workflow_pb2

Trigger = Literal["OnWorkflowCompletion", "OnWorkflowDeletion"]
__all__ = ["STRATEGIES", "GcPlan", "RepositoryPlan", "Trigger", "check_strategies", "plan_artifact_gc"]


@dataclass
class RepositoryPlan:
    """One DeleteWorkflowArtifacts call (continued until complete)."""

    repository: str
    keys: list[str] = field(default_factory=list)
    all_under_prefix: bool = False
    keep_keys: list[str] = field(default_factory=list)


@dataclass
class GcPlan:
    workflow: str
    calls: list[RepositoryPlan] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(c.keys or c.all_under_prefix for c in self.calls)


def plan_artifact_gc(workflow: workflow_pb2.Workflow, trigger: Trigger) -> GcPlan:
    """The deletions trigger calls for, from the workflow's spec and its recorded status."""
    spec = workflow.spec
    default_strategy = _strategy(spec.artifact_gc, "spec.artifactGC.strategy")
    repository = spec.artifact_repository_ref.key
    own = _declared_strategies(spec)
    by_repository: dict[str, RepositoryPlan] = {repository: RepositoryPlan(repository)}
    for template_name, artifact in _stored_outputs(workflow.status):
        strategy = own.get((template_name, artifact.name), default_strategy)
        plan = by_repository.setdefault(artifact.stored.repository, RepositoryPlan(artifact.stored.repository))
        if strategy == trigger:
            plan.keys.append(artifact.stored.key)
        elif strategy != default_strategy:
            plan.keep_keys.append(artifact.stored.key)
    if default_strategy == trigger:
        by_repository[repository].all_under_prefix = True
    calls = [plan for plan in by_repository.values() if plan.keys or plan.all_under_prefix]
    return GcPlan(workflow.metadata.name, calls)


def check_strategies(spec: workflow_pb2.WorkflowSpec) -> None:
    """Raise InvalidSpec naming the field of an unknown strategy (lint uses treadle.spec.artifact_gc)."""
    _strategy(spec.artifact_gc, "spec.artifactGC.strategy")
    _declared_strategies(spec)


def _declared_strategies(spec: workflow_pb2.WorkflowSpec) -> dict[tuple[str, str], str]:
    """(template, output artifact) -> strategy, for output artifacts that set their own."""
    found: dict[tuple[str, str], str] = {}
    for t, template in enumerate(spec.templates):
        for a, artifact in enumerate(template.outputs.artifacts):
            if artifact.HasField("artifact_gc") and artifact.artifact_gc.strategy:
                where = f"spec.templates[{t}].outputs.artifacts[{a}].artifactGC.strategy"
                found[(template.name, artifact.name)] = _strategy(artifact.artifact_gc, where)
    return found


def _stored_outputs(status: workflow_pb2.WorkflowStatus) -> Iterator[tuple[str, workflow_pb2.Artifact]]:
    for node in status.nodes.values():
        for artifact in node.outputs.artifacts:
            if artifact.HasField("stored") and artifact.stored.key:
                yield node.template_name, artifact


def _strategy(gc: workflow_pb2.ArtifactGC, where: str) -> str:
    problem = strategy_problem(gc.strategy)
    if problem:
        raise InvalidSpec(problem, field=where)
    return "Never" if not gc.strategy else gc.strategy
