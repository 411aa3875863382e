"""The pure side of artifact sources, artifact GC lint and large values: binding, lint, references in storage."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from engine_driver import Run

from treadle.errors import InvalidSpec
from treadle.services.scheduler.engine import NodePhase
from treadle.services.scheduler.large_values import KnownValues, fill_all, without_inline_values
from treadle.spec.artifact_gc import artifact_gc_violations, wants_artifact_gc
from treadle.spec.manifest import load_manifest
from treadle.spec.validate import validate_workflow

SOURCES = """
kind: Workflow
metadata: {name: src}
spec:
  entrypoint: main
  arguments: {parameters: [{name: bucket-key, value: data/in.csv}]}
  templates:
  - name: main
    steps:
    - - {name: make, template: make}
    - - name: take
        template: take
        arguments:
          parameters: [{name: rev, value: "{{steps.make.outputs.parameters.rev}}"}]
          artifacts:
          - {name: csv, s3: {key: "{{workflow.parameters.bucket-key}}"}}
          - {name: tree, from: "{{steps.make.outputs.artifacts.tree}}", subPath: "sub/{{steps.make.outputs.parameters.rev}}"}
  - name: make
    outputs:
      parameters: [{name: rev, valueFrom: {path: /tmp/rev}}]
      artifacts: [{name: tree, path: /tmp/tree, s3: {key: "shared/{{workflow.name}}/tree.tgz"}}]
    container: {image: busybox, command: [sh, -c, "mkdir /tmp/tree; echo v1 > /tmp/rev"]}
  - name: take
    inputs:
      parameters: [{name: rev}]
      artifacts:
      - {name: csv, path: /tmp/in.csv, mode: 384}
      - {name: tree, path: /tmp/tree, mode: 493, recurseMode: true}
      - name: page
        path: /tmp/page.html
        http: {url: "https://example.com/{{inputs.parameters.rev}}/page.html"}
      - {name: code, path: /tmp/code, git: {repo: "file:///srv/repo.git", revision: "{{inputs.parameters.rev}}"}}
      - {name: extra, path: /tmp/extra, optional: true}
    container: {image: busybox, command: [ls, /tmp]}
"""


def test_outside_sources_are_bound_with_their_scopes_and_options_are_kept() -> None:
    stored = {"key": "shared/src/tree.tgz", "sizeBytes": "10", "sha256": "ab", "archive": "tgz"}
    seen: dict[str, dict[str, Any]] = {}

    def make(ctx: dict[str, Any]) -> Any:
        seen["make"] = ctx
        outputs = {"parameters": [{"name": "rev", "value": "v1"}], "artifacts": [{"name": "tree", "stored": stored}]}
        return "Succeeded", outputs, ""

    def take(ctx: dict[str, Any]) -> Any:
        seen["take"] = ctx
        return "Succeeded", {"exitCode": "0"}, ""

    run = Run(SOURCES).run(by_step={"make": make, "take": take})
    assert run.phase == NodePhase.SUCCEEDED
    # An output's key-only s3 location is resolved in the step's context.
    assert seen["make"]["outputs"]["artifacts"][0]["s3"] == {"key": "shared/src/tree.tgz"}
    arts = {a["name"]: a for a in seen["take"]["inputs"]["artifacts"]}
    # Arguments resolve in the caller's scope; the template's own sources in the template's (its inputs).
    assert arts["csv"] == {"name": "csv", "path": "/tmp/in.csv", "mode": 384, "s3": {"key": "data/in.csv"}}
    assert arts["tree"] == {
        "name": "tree",
        "path": "/tmp/tree",
        "mode": 493,
        "recurseMode": True,
        "subPath": "sub/v1",
        "stored": stored,
    }
    assert arts["page"]["http"] == {"url": "https://example.com/v1/page.html"}
    assert arts["code"]["git"] == {"repo": "file:///srv/repo.git", "revision": "v1"}
    assert arts["extra"] == {"name": "extra", "path": "/tmp/extra", "optional": True}


def test_lint_accepts_outside_sources_and_checks_their_references() -> None:
    validate_workflow(load_manifest(SOURCES))
    bad = SOURCES.replace("{{inputs.parameters.rev}}/page", "{{inputs.parameters.nope}}/page")
    with pytest.raises(InvalidSpec) as caught:
        validate_workflow(load_manifest(bad))
    assert [v.field for v in caught.value.violations] == ["spec.templates[2].inputs.artifacts[2].http.url"]
    unsupplied = SOURCES.replace("- {name: csv, s3:", "- {name: other, s3:")
    with pytest.raises(InvalidSpec, match="required input artifact 'csv' of template 'take' is not supplied"):
        validate_workflow(load_manifest(unsupplied))


def test_artifact_gc_strategies_are_linted_by_field() -> None:
    spec = {
        "artifactGC": {"strategy": "OnWorkflowCompletion"},
        "templates": [{"name": "t", "outputs": {"artifacts": [{"name": "a", "artifactGC": {"strategy": "Later"}}]}}],
    }
    assert wants_artifact_gc(spec) and not wants_artifact_gc({"templates": [{"name": "t"}]})
    assert [(v.field, v.description) for v in artifact_gc_violations(spec)] == [
        (
            "spec.templates[0].outputs.artifacts[0].artifactGC.strategy",
            "unknown strategy 'Later'; use one of Never, OnWorkflowCompletion, OnWorkflowDeletion",
        )
    ]
    manifest = SOURCES.replace("  entrypoint: main\n", "  entrypoint: main\n  artifactGC: {strategy: Sometimes}\n")
    with pytest.raises(InvalidSpec) as caught:
        validate_workflow(load_manifest(manifest))
    assert [v.field for v in caught.value.violations] == ["spec.artifactGC.strategy"]


def ref(text: str, key: str) -> dict[str, Any]:
    data = text.encode()
    return {"key": key, "sizeBytes": str(len(data)), "sha256": hashlib.sha256(data).hexdigest(), "archive": "none"}


def test_storage_and_status_keep_references_and_loading_reads_each_blob_once() -> None:
    big, other = "x" * 300_000, "y" * 300_000
    outputs = {
        "result": big,
        "resultRef": ref(big, "wf/pod/outputs.result.txt"),
        "parameters": [{"name": "p", "value": other, "valueRef": ref(other, "wf/pod/p")}, {"name": "q", "value": "s"}],
        "exitCode": "0",
    }
    slim = without_inline_values(outputs)
    assert "result" not in slim and slim["parameters"] == [
        {"name": "p", "valueRef": outputs["parameters"][0]["valueRef"]},
        {"name": "q", "value": "s"},
    ]
    assert outputs["result"] is big  # the engine's copy is untouched
    small = {"result": "short", "exitCode": "0"}
    assert without_inline_values(small) is small

    # A consumer's inputs bound to the same texts get the same references.
    known = KnownValues()
    known.remember(outputs)
    inputs = {
        "parameters": [{"name": "a", "value": big}, {"name": "b", "value": big + "!"}, {"name": "c", "value": "c"}]
    }
    known.add_references(inputs)
    assert inputs["parameters"][0]["valueRef"] == outputs["resultRef"]
    assert "valueRef" not in inputs["parameters"][1] and "valueRef" not in inputs["parameters"][2]

    # Loaded from storage: texts are read back, each blob once.
    reads: list[str] = []

    async def load(reference: dict[str, Any]) -> str:
        reads.append(reference["key"])
        return {"wf/pod/outputs.result.txt": big, "wf/pod/p": other}[reference["key"]]

    stored_outputs, stored_inputs = without_inline_values(outputs), without_inline_values(inputs)
    assert asyncio.run(fill_all([stored_outputs, stored_inputs], load)) == 2
    assert stored_outputs["result"] == big and stored_outputs["parameters"][0]["value"] == other
    assert stored_inputs["parameters"][0]["value"] == big
    assert sorted(reads) == ["wf/pod/outputs.result.txt", "wf/pod/p"]
