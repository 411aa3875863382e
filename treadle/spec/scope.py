"""Which `{{...}}` names a template may use, shared by lint and the engine."""

from __future__ import annotations

from typing import Any

WORKFLOW_FIELDS = (
    "name", "namespace", "uid", "serviceAccountName", "creationTimestamp", "status", "failures", "duration",
)  # fmt: skip
# Per-node values a step may read about an earlier sibling: {{steps.X.<field>}}.
NODE_FIELDS = ("id", "status", "startedAt", "finishedAt", "exitCode", "ip")
KINDS = ("container", "script", "steps", "dag", "suspend")
LEAF_ONLY_NODE_OUTPUTS = ("outputs.result", "outputs.exitCode")


def template_kind(tmpl: dict[str, Any]) -> str:
    kinds = [k for k in KINDS if tmpl.get(k) is not None]
    return kinds[0] if len(kinds) == 1 else ""


def is_leaf(tmpl: dict[str, Any]) -> bool:
    return template_kind(tmpl) in ("container", "script")


def sibling_names(prefix: str, name: str, tmpl: dict[str, Any] | None, *, looped: bool = False) -> set[str]:
    """The names `{{prefix.name.*}}` offers for a finished sibling running tmpl."""
    base = f"{prefix}.{name}"
    names = {f"{base}.{f}" for f in NODE_FIELDS}
    if looped:
        names |= {f"{base}.outputs.parameters", f"{base}.outputs.result"}
    if tmpl is None:
        return names
    outputs = tmpl.get("outputs") or {}
    names |= {f"{base}.outputs.parameters.{p['name']}" for p in outputs.get("parameters") or [] if "name" in p}
    names |= {f"{base}.outputs.artifacts.{a['name']}" for a in outputs.get("artifacts") or [] if "name" in a}
    if is_leaf(tmpl):
        names |= {f"{base}.{o}" for o in LEAF_ONLY_NODE_OUTPUTS}
    return names


def input_names(tmpl: dict[str, Any]) -> set[str]:
    inputs = tmpl.get("inputs") or {}
    names = {f"inputs.parameters.{p['name']}" for p in inputs.get("parameters") or [] if "name" in p}
    if inputs.get("parameters"):
        names.add("inputs.parameters")
    names |= {f"inputs.artifacts.{a['name']}.path" for a in inputs.get("artifacts") or [] if "name" in a}
    return names


def global_names(spec: dict[str, Any]) -> set[str]:
    names = {f"workflow.{f}" for f in WORKFLOW_FIELDS}
    names |= {"workflow.mainEntrypoint", "workflow.parameters.json"}
    args = spec.get("arguments") or {}
    names |= {f"workflow.parameters.{p['name']}" for p in args.get("parameters") or [] if "name" in p}
    for tmpl in spec.get("templates") or []:
        outputs = tmpl.get("outputs") or {}
        for p in outputs.get("parameters") or []:
            if p.get("globalName"):
                names.add(f"workflow.outputs.parameters.{p['globalName']}")
        for a in outputs.get("artifacts") or []:
            if a.get("globalName"):
                names.add(f"workflow.outputs.artifacts.{a['globalName']}")
    return names
