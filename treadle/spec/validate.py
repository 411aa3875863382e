"""Lint: everything that can be known wrong about a workflow before it runs.

validate_workflow returns the normalised workflow dict (arguments applied,
inline templates named, templateDefaults merged) or raises InvalidSpec
listing every violation, each naming its field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from treadle.errors import FieldViolation, InvalidSpec
from treadle.spec.convert import check_fields, workflow_from_dict
from treadle.spec.lint import Linter
from treadle.spec.normalize import normalize_spec
from treadle.spec.tree import deep_copy

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
MAX_NAME = 253


def validate_workflow(
    doc: dict[str, Any],
    *,
    parameters: dict[str, str] | None = None,
    entrypoint: str = "",
    generate_name: str = "",
) -> dict[str, Any]:
    """Check a parsed Workflow manifest; return it normalised, with overrides applied."""
    check_fields(doc)
    wf = deep_copy({k: v for k, v in doc.items() if k != "status"})
    meta = wf.get("metadata") or {}
    wf["metadata"] = meta
    spec = wf.get("spec")
    if not isinstance(spec, dict):
        raise InvalidSpec(FieldViolation("spec", "spec is required"))
    if generate_name:
        meta["generateName"] = generate_name
    if entrypoint:
        spec["entrypoint"] = entrypoint
    _apply_parameters(spec, parameters or {})
    violations: list[FieldViolation] = []
    _check_metadata(meta, violations)
    if spec.get("shutdown"):
        violations.append(FieldViolation("spec.shutdown", "a new workflow cannot be submitted shut down"))
    spec = normalize_spec(spec, in_place=True)
    wf["spec"] = spec
    Linter(spec, violations).run()
    if violations:
        raise InvalidSpec(violations)
    return wf


def validate_workflow_template(doc: dict[str, Any]) -> dict[str, Any]:
    """Check a parsed WorkflowTemplate manifest. Entrypoint and argument values may be left for the workflow."""
    workflow_from_dict({k: v for k, v in doc.items() if k != "kind"})
    wf = copy.deepcopy({k: v for k, v in doc.items() if k != "status"})
    meta = wf.get("metadata") or {}
    wf["metadata"] = meta
    spec = wf.get("spec")
    if not isinstance(spec, dict):
        raise InvalidSpec(FieldViolation("spec", "spec is required"))
    violations: list[FieldViolation] = []
    if not meta.get("name"):
        violations.append(FieldViolation("metadata.name", "a WorkflowTemplate needs metadata.name"))
    _check_metadata(meta, violations)
    spec = normalize_spec(spec)
    wf["spec"] = spec
    Linter(spec, violations, partial=True).run()
    if violations:
        raise InvalidSpec(violations)
    return wf


def _apply_parameters(spec: dict[str, Any], overrides: dict[str, str]) -> None:
    if not overrides:
        return
    args = spec.get("arguments") or {}
    spec["arguments"] = args
    params = args.get("parameters") or []
    args["parameters"] = params
    by_name = {p.get("name"): p for p in params}
    for name, value in overrides.items():
        if name in by_name:
            by_name[name]["value"] = value
        else:
            params.append({"name": name, "value": value})


def _check_metadata(meta: dict[str, Any], out: list[FieldViolation]) -> None:
    name, gen = meta.get("name", ""), meta.get("generateName", "")
    if not name and not gen:
        out.append(FieldViolation("metadata.name", "metadata.name or metadata.generateName is required"))
    if name and (len(name) > MAX_NAME or not NAME_RE.match(name)):
        out.append(
            FieldViolation("metadata.name", f"{name!r} is not a valid name (lowercase letters, digits, '-', '.')")
        )
    if gen and not NAME_RE.match(gen.rstrip("-.") or "x"):
        out.append(FieldViolation("metadata.generateName", f"{gen!r} is not a valid name prefix"))
