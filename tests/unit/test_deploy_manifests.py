"""The Kubernetes manifests in deploy/ are valid objects, and their commands are real treadle commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from treadle.services.server import add_serve_arguments

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").rglob("*.yaml"))
GRPC_SERVICES = {
    "treadle.admission.v1.AdmissionService",
    "treadle.scheduler.v1.SchedulerService",
    "treadle.artifacts.v1.ArtifactService",
    "treadle.outputs.v1.OutputService",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_there_are_manifests() -> None:
    assert {p.parent.name for p in MANIFESTS} == {"all-in-one", "split"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_object_matches_the_kubernetes_schema(path: Path) -> None:
    version = kubernetes_validate.latest_version()
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    bad = documents(MANIFESTS[0])[-1]
    bad["spec"]["prots"] = bad["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_containers_run_real_serve_commands_against_existing_services(path: Path) -> None:
    docs = documents(path)
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_serve_arguments(parser)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert deployments
    for dep in deployments:
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        args = container["args"]
        assert args[0] == "serve"
        parsed = parser.parse_args(args[1:])
        for peer in ("admission", "scheduler", "artifacts", "outputs"):
            address = getattr(parsed, peer, None)
            if address:
                assert address.split(".")[0].split(":")[0] in services, f"{dep['metadata']['name']}: {address}"
        probe = container["readinessProbe"]["grpc"]
        assert probe["service"] in GRPC_SERVICES
        for volume in pod["volumes"]:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
        for env in container.get("env", []):
            assert env["valueFrom"]["secretKeyRef"]["name"] in secrets
        assert dep["spec"]["replicas"] == 1, "SQLite state means one writer per service"
    for svc in (d for d in docs if d["kind"] == "Service"):
        (port,) = svc["spec"]["ports"]
        assert port["name"] == "grpc" and port["appProtocol"] == "grpc"
