"""artifactGC strategies, as Argo names them: checked by lint; applied by services/artifacts/gc_plan.py."""

from __future__ import annotations

from typing import Any

from treadle.errors import FieldViolation

# "" (not set) means Never, or for an artifact: the workflow's strategy.
STRATEGIES = ("", "Never", "OnWorkflowCompletion", "OnWorkflowDeletion")


def strategy_problem(strategy: object) -> str | None:
    """Why strategy is not one, or None when it is."""
    if strategy in STRATEGIES:
        return None
    return f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES[1:])}"


def wants_artifact_gc(spec: dict[str, Any]) -> bool:
    """Whether a spec sets any GC strategy: a cheap check before planning (gc_plan.py)."""
    if (spec.get("artifactGC") or {}).get("strategy"):
        return True
    return any(
        (artifact.get("artifactGC") or {}).get("strategy")
        for template in spec.get("templates") or []
        for artifact in (template.get("outputs") or {}).get("artifacts") or []
    )


def artifact_gc_violations(spec: dict[str, Any]) -> list[FieldViolation]:
    """Every unknown strategy of a workflow spec (the workflow's own and its output artifacts'), by field."""
    found: list[FieldViolation] = []

    def check(gc: Any, field: str) -> None:
        if isinstance(gc, dict):
            problem = strategy_problem(gc.get("strategy") or "")
            if problem:
                found.append(FieldViolation(field, problem))

    check(spec.get("artifactGC"), "spec.artifactGC.strategy")
    for t, template in enumerate(spec.get("templates") or []):
        for a, artifact in enumerate((template.get("outputs") or {}).get("artifacts") or []):
            check(artifact.get("artifactGC"), f"spec.templates[{t}].outputs.artifacts[{a}].artifactGC.strategy")
    return found
