from __future__ import annotations

from typing import Any

import pytest

from treadle.errors import InvalidSpec
from treadle.spec.references import referenced_names, resolve_references

LIBRARY: dict[str, Any] = {
    "entrypoint": "greet",
    "arguments": {"parameters": [{"name": "who", "value": "library"}, {"name": "mood", "value": "calm"}]},
    "templates": [
        {"name": "greet", "steps": [[{"name": "say", "template": "echo"}]]},
        {"name": "echo", "container": {"image": "busybox", "command": ["echo", "hi"]}},
        {"name": "nested", "steps": [[{"name": "far", "templateRef": {"name": "other", "template": "leaf"}}]]},
    ],
}
OTHER: dict[str, Any] = {"templates": [{"name": "leaf", "container": {"image": "busybox"}}]}
STORE = {"library": LIBRARY, "other": OTHER}


def test_template_ref_copies_the_template_and_what_it_calls() -> None:
    spec = {
        "entrypoint": "main",
        "templates": [
            {"name": "main", "steps": [[{"name": "a", "templateRef": {"name": "library", "template": "greet"}}]]}
        ],
    }
    assert referenced_names(spec) == {"library"}
    out = resolve_references(spec, STORE.get)
    names = [t["name"] for t in out["templates"]]
    assert names == ["main", "library/greet", "library/echo"]
    assert out["templates"][0]["steps"][0][0] == {"name": "a", "template": "library/greet"}
    assert out["templates"][1]["steps"][0][0]["template"] == "library/echo"


def test_template_refs_inside_copied_templates_resolve_too() -> None:
    spec = {
        "templates": [
            {
                "name": "main",
                "dag": {"tasks": [{"name": "n", "templateRef": {"name": "library", "template": "nested"}}]},
            }
        ]
    }
    out = resolve_references(spec, STORE.get)
    assert {t["name"] for t in out["templates"]} == {"main", "library/nested", "other/leaf"}


def test_workflow_template_ref_merges_with_workflow_values_winning() -> None:
    spec = {"workflowTemplateRef": {"name": "library"}, "arguments": {"parameters": [{"name": "who", "value": "me"}]}}
    out = resolve_references(spec, STORE.get)
    assert out["entrypoint"] == "greet"
    params = {p["name"]: p["value"] for p in out["arguments"]["parameters"]}
    assert params == {"who": "me", "mood": "calm"}
    assert "workflowTemplateRef" not in out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"workflowTemplateRef": {"name": "missing"}},
            "spec.workflowTemplateRef.name: WorkflowTemplate 'missing' not found",
        ),
        (
            {
                "templates": [
                    {"name": "m", "steps": [[{"name": "a", "templateRef": {"name": "library", "template": "nope"}}]]}
                ]
            },
            "spec.templates[0].steps[0][0].templateRef: WorkflowTemplate 'library' has no template 'nope'",
        ),
    ],
)
def test_missing_references_name_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        resolve_references(spec, STORE.get)
    assert str(info.value) == message
