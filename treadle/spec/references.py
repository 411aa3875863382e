"""Resolving `workflowTemplateRef` and `templateRef` against stored WorkflowTemplates.

Admission fetches the WorkflowTemplates a workflow names and copies what it
uses into the workflow's own spec, so a later edit of a WorkflowTemplate never
changes a workflow that already runs. A copied template is named
"<workflowtemplate>/<template>"; its own calls are rewritten the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from treadle.errors import FieldViolation, InvalidSpec

# WorkflowTemplate name -> its spec dict, or None when there is no such template.
Fetch = Callable[[str], "dict[str, Any] | None"]


def referenced_names(spec: dict[str, Any]) -> set[str]:
    """Names of the WorkflowTemplates spec refers to directly."""
    names = set()
    ref = spec.get("workflowTemplateRef") or {}
    if ref.get("name"):
        names.add(ref["name"])
    for _, holder in _ref_holders(spec):
        names.add(holder["templateRef"].get("name", ""))
    return {n for n in names if n}


def resolve_references(spec: dict[str, Any], fetch: Fetch) -> dict[str, Any]:
    """A copy of spec with its WorkflowTemplate and every templateRef resolved into spec.templates."""
    spec = copy.deepcopy(spec)
    ref = spec.pop("workflowTemplateRef", None)
    if ref:
        base = fetch(ref.get("name", ""))
        if base is None:
            raise InvalidSpec(
                FieldViolation("spec.workflowTemplateRef.name", f"WorkflowTemplate {ref.get('name')!r} not found")
            )
        spec = merge_into_template(base, spec)
    templates: list[dict[str, Any]] = spec.setdefault("templates", [])
    have = {t.get("name") for t in templates}

    def copy_template(owner: str, name: str, where: str) -> str:
        qualified = f"{owner}/{name}"
        if qualified in have:
            return qualified
        source = fetch(owner)
        if source is None:
            raise InvalidSpec(FieldViolation(where, f"WorkflowTemplate {owner!r} not found"))
        found = next((t for t in source.get("templates") or [] if t.get("name") == name), None)
        if found is None:
            raise InvalidSpec(FieldViolation(where, f"WorkflowTemplate {owner!r} has no template {name!r}"))
        clone = copy.deepcopy(found)
        clone["name"] = qualified
        have.add(qualified)
        templates.append(clone)
        for call in _calls(clone):
            if call.get("template") and not call.get("templateRef"):
                call["template"] = copy_template(owner, call["template"], where)
        return qualified

    seen = 0
    while seen < len(templates):  # copied templates may hold templateRefs of their own
        tmpl = templates[seen]
        seen += 1
        for path, holder in _ref_holders({"templates": [tmpl]}):
            tref = holder.pop("templateRef")
            holder["template"] = copy_template(tref.get("name", ""), tref.get("template", ""), path)
    for path, holder in _ref_holders({"hooks": spec.get("hooks") or {}}):
        tref = holder.pop("templateRef")
        holder["template"] = copy_template(tref.get("name", ""), tref.get("template", ""), f"spec.{path}")
    return spec


def merge_into_template(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """A workflow's spec over its WorkflowTemplate's: the workflow's fields, templates and argument values win."""
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if key in ("templates", "arguments"):
            continue
        merged[key] = copy.deepcopy(value)
    by_name = {t.get("name"): t for t in merged.get("templates") or []}
    for tmpl in top.get("templates") or []:
        by_name[tmpl.get("name")] = copy.deepcopy(tmpl)
    merged["templates"] = list(by_name.values())
    args = copy.deepcopy(merged.get("arguments") or {})
    for kind in ("parameters", "artifacts"):
        entries = {e.get("name"): e for e in args.get(kind) or []}
        for entry in (top.get("arguments") or {}).get(kind) or []:
            entries[entry.get("name")] = {**entries.get(entry.get("name"), {}), **copy.deepcopy(entry)}
        if entries:
            args[kind] = list(entries.values())
    if args:
        merged["arguments"] = args
    return merged


def _calls(tmpl: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [c for group in tmpl.get("steps") or [] for c in group or []]
    calls += list((tmpl.get("dag") or {}).get("tasks") or [])
    return calls + [h for c in list(calls) for h in (c.get("hooks") or {}).values()]


def _ref_holders(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every step, task or hook that holds a templateRef, with its field path."""
    for i, tmpl in enumerate(spec.get("templates") or []):
        for g, group in enumerate(tmpl.get("steps") or []):
            for s, step in enumerate(group or []):
                yield from _with_hooks(f"templates[{i}].steps[{g}][{s}]", step)
        for t, task in enumerate((tmpl.get("dag") or {}).get("tasks") or []):
            yield from _with_hooks(f"templates[{i}].dag.tasks[{t}]", task)
    for name, hook in (spec.get("hooks") or {}).items():
        if hook.get("templateRef"):
            yield f"hooks.{name}.templateRef", hook


def _with_hooks(path: str, call: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if call.get("templateRef"):
        yield f"spec.{path}.templateRef", call
    for name, hook in (call.get("hooks") or {}).items():
        if hook.get("templateRef"):
            yield f"spec.{path}.hooks.{name}.templateRef", hook
