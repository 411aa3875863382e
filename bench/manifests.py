"""Argo Workflow manifests for the workloads, written as JSON (which is YAML too)."""

from __future__ import annotations

import json
from typing import Any

from bench.commands import add_script, sum_script

IMAGE = "busybox"  # recorded by the local runtime, not used

Manifest = dict[str, Any]


def _workflow(prefix: str, templates: list[dict[str, Any]]) -> Manifest:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{prefix}-"},
        "spec": {"entrypoint": "main", "templates": templates},
    }


def _add_template() -> dict[str, Any]:
    return {
        "name": "add",
        "inputs": {"parameters": [{"name": "n"}]},
        "container": {"image": IMAGE, "command": ["sh", "-c"], "args": [add_script("{{inputs.parameters.n}}")]},
    }


def _sum_template() -> dict[str, Any]:
    return {
        "name": "sum",
        "inputs": {"parameters": [{"name": "values"}]},
        "container": {"image": IMAGE, "command": ["sh", "-c"], "args": [sum_script("{{inputs.parameters.values}}")]},
    }


def _n(value: str) -> dict[str, Any]:
    return {"parameters": [{"name": "n", "value": value}]}


def chain(length: int) -> Manifest:
    """`length` sequential steps; each adds 1 to the previous step's output (its result)."""
    steps = [
        [
            {
                "name": f"s{i}",
                "template": "add",
                "arguments": _n("0" if i == 0 else f"{{{{steps.s{i - 1}.outputs.result}}}}"),
            }
        ]
        for i in range(length)
    ]
    return _workflow(f"chain{length}", [{"name": "main", "steps": steps}, _add_template()])


def fan(width: int, *, fan_in: bool = True) -> Manifest:
    """A DAG of `width` independent tasks (withSequence), then, with fan_in, one task given all their results."""
    tasks: list[dict[str, Any]] = [
        {"name": "fan", "template": "add", "withSequence": {"count": str(width)}, "arguments": _n("{{item}}")}
    ]
    templates = [_add_template()]
    if fan_in:
        tasks.append(
            {
                "name": "sum",
                "template": "sum",
                "dependencies": ["fan"],
                "arguments": {"parameters": [{"name": "values", "value": "{{tasks.fan.outputs.result}}"}]},
            }
        )
        templates.append(_sum_template())
    return _workflow(f"fan{width}", [{"name": "main", "dag": {"tasks": tasks}}, *templates])


def single_step(prefix: str = "one") -> Manifest:
    """One step: the entrypoint is the step's own template, as in Argo's hello-world."""
    manifest = _workflow(prefix, [_add_template()])
    manifest["spec"].update(entrypoint="add", arguments=_n("41"))
    return manifest


def named(manifest: Manifest, name: str) -> Manifest:
    """The manifest with a fixed metadata.name instead of generateName, so a client knows it before submitting."""
    metadata = {k: v for k, v in manifest["metadata"].items() if k != "generateName"}
    return {**manifest, "metadata": {**metadata, "name": name}}


def text(manifest: Manifest) -> str:
    return json.dumps(manifest, indent=1)
