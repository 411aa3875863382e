"""A workflow written with Hera (Argo's Python SDK) runs unchanged: Hera's own YAML is submitted as it is."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conformance_harness import WORKFLOW_TIMEOUT, Server

from treadle.client import workflow_to_argo_json

# Whole workflows through a real `treadle serve all` process.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

pytest.importorskip("hera", reason="hera is not installed (pip install -e '.[dev]')")
import hera_pipeline  # noqa: E402  (needs hera)


def run_hera(server: Server, manifest: str) -> dict[str, dict[str, Any]]:
    assert yaml.safe_load(manifest)["kind"] == "Workflow"  # Hera's output, untouched
    submitted = server.client.submit(manifest, parameters={"fabric": "herringbone"})
    final = server.client.wait(submitted.metadata.name, timeout=WORKFLOW_TIMEOUT)
    doc = workflow_to_argo_json(final)
    assert doc["status"]["phase"] == "Succeeded", doc["status"]
    return {n["displayName"]: n for n in doc["status"]["nodes"].values()}


def test_hera_rendered_yaml_runs_unchanged(server: Server) -> None:
    nodes = run_hera(server, hera_pipeline.build().to_yaml())
    assert nodes["count"]["outputs"] == {"result": "14", "exitCode": "0"}  # warp + weft + heddle
    assert nodes["tell"]["outputs"]["result"] == "the herringbone bolt holds 14 letters"
    assert nodes["label"]["type"] == "Retry"
    assert nodes["label"]["outputs"]["result"] == "bolt-140"  # the script input's default prefix


def test_hera_yaml_with_container_resources_runs(server: Server) -> None:
    nodes = run_hera(server, hera_pipeline.build(with_resources=True).to_yaml())
    assert nodes["tell"]["outputs"]["result"] == "the herringbone bolt holds 14 letters"
