"""Rewrites that give the engine one flat shape: templateDefaults merged, inline templates named."""

from __future__ import annotations

import copy
from typing import Any

TYPE_FIELDS = ("container", "script", "steps", "dag", "suspend")


def normalize_spec(spec: dict[str, Any], *, in_place: bool = False) -> dict[str, Any]:
    """spec with inline templates lifted out and templateDefaults applied (a copy unless in_place)."""
    if not in_place:
        spec = copy.deepcopy(spec)
    templates: list[dict[str, Any]] = spec.get("templates") or []
    queue = list(templates)
    while queue:
        tmpl = queue.pop()
        for call in _calls(tmpl):
            inline = call.pop("inline", None)
            if inline is None:
                continue
            inline = dict(inline)
            inline["name"] = f"{tmpl.get('name', '')}/{call.get('name', '')}"
            call["template"] = inline["name"]
            templates.append(inline)
            queue.append(inline)
    defaults = spec.get("templateDefaults")
    if defaults:
        spec["templates"] = [merge_defaults(defaults, t) for t in templates]
    else:
        spec["templates"] = templates
    return spec


def merge_defaults(defaults: dict[str, Any], tmpl: dict[str, Any]) -> dict[str, Any]:
    """Template fields win; a default's container or script applies only to templates of that type."""
    merged = copy.deepcopy(tmpl)
    for key, value in defaults.items():
        if key == "name":
            continue
        if key in TYPE_FIELDS:
            if isinstance(merged.get(key), dict) and isinstance(value, dict):
                merged[key] = _deep_merge(value, merged[key])
            continue
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _deep_merge(value, merged[key])
    return merged


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _calls(tmpl: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [c for group in tmpl.get("steps") or [] for c in group or []]
    calls += list((tmpl.get("dag") or {}).get("tasks") or [])
    return calls
