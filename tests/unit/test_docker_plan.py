"""The Docker runtime's decisions that need no engine: quantities, the containers of a pod, staged and copied paths."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from treadle.secrets import SecretFiles
from treadle.services.scheduler.runtimes.docker_files import ContainerLayout, output_paths, pack_staged, staged_paths
from treadle.services.scheduler.runtimes.docker_plan import (
    SCRIPT_PATH,
    PlanError,
    PodIdentity,
    PodPlan,
    docker_name,
    plan_pod,
    volume_name,
)
from treadle.services.scheduler.runtimes.quantities import QuantityError, memory_bytes, nano_cpus
from treadle.spec.convert import template_from_dict
from treadle.workflow.v1 import workflow_pb2

IDENTITY = PodIdentity("srv1", "loom", "uid-7", "loom-123", "loom-123", 2)


def plan(
    template: dict[str, object], *, volumes: list[workflow_pb2.Volume] | None = None, secrets: Path | None = None
) -> PodPlan:
    return plan_pod(
        template_from_dict({"name": "t", **template}),
        IDENTITY,
        volumes=volumes or [],
        secrets=SecretFiles(secrets),
        network="",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64Mi", 64 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("500k", 500_000), ("129e6", 129_000_000), ("1000", 1000)],
)
def test_memory_quantities(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("500m", 500_000_000), ("2", 2 * 10**9), ("0.25", 250_000_000)])
def test_cpu_quantities(text: str, expected: int) -> None:
    assert nano_cpus(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1.2.3", "5 Mi", "-1"])
def test_bad_quantities_are_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        memory_bytes(text)


def test_container_command_and_args_map_to_entrypoint_and_cmd() -> None:
    main = plan({"container": {"image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"]}}).main
    assert (main.entrypoint, main.command) == (["sh", "-c"], ["echo hi"])
    only_args = plan({"container": {"image": "busybox", "args": ["echo", "hi"]}}).main
    assert (only_args.entrypoint, only_args.command) == (None, ["echo", "hi"])  # the image's ENTRYPOINT stays


def test_a_script_runs_its_staged_source() -> None:
    main = plan({"script": {"image": "python:3", "command": ["python3"], "args": ["-v"], "source": "print(1)"}}).main
    assert (main.entrypoint, main.command) == (["python3"], [SCRIPT_PATH, "-v"])
    shebang = plan({"script": {"image": "busybox", "source": "#!/bin/sh\necho hi"}}).main
    assert (shebang.entrypoint, shebang.command) == ([SCRIPT_PATH], None)


def test_names_and_labels_say_whose_container_it_is() -> None:
    main = plan({"container": {"image": "busybox"}}).main
    assert main.name == "treadle-srv1-loom-123-2-main"
    assert main.labels == {
        "treadle.server": "srv1",
        "treadle.workflow": "loom",
        "treadle.workflow-uid": "uid-7",
        "treadle.node": "loom-123",
        "treadle.attempt": "2",
        "treadle.container": "main",
    }
    assert docker_name("-odd name/here") == "x-odd-name-here"


def test_env_values_and_secrets(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "token").write_text("t0ken")
    env = [
        {"name": "PLAIN", "value": "weft"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "SPARE", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "spare", "optional": True}}},
    ]
    main = plan({"container": {"image": "busybox", "env": env}}, secrets=tmp_path).main
    assert main.env == {"PLAIN": "weft", "TOKEN": "t0ken"}
    assert "t0ken" not in repr(main)  # env is left out of the config's repr


def test_a_missing_secret_names_the_field_and_never_a_value(tmp_path: Path) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    with pytest.raises(PlanError, match=r"container\.env\[0\] \(TOKEN\): secret 'creds' has no key 'token'"):
        plan({"container": {"image": "busybox", "env": env}}, secrets=tmp_path)
    sneaky = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "..", "key": "passwd"}}}]
    with pytest.raises(PlanError, match="not a valid name"):
        plan({"container": {"image": "busybox", "env": sneaky}}, secrets=tmp_path)


def test_volume_mounts() -> None:
    volumes = [
        workflow_pb2.Volume(name="scratch", empty_dir=workflow_pb2.EmptyDirVolumeSource()),
        workflow_pb2.Volume(name="host", host_path=workflow_pb2.HostPathVolumeSource(path="/srv/data")),
    ]
    mounts = [
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "host", "mountPath": "/in", "readOnly": True, "subPath": "bolts"},
    ]
    pod = plan({"container": {"image": "busybox", "volumeMounts": mounts}}, volumes=volumes)
    scratch, host = pod.main.mounts
    assert (scratch.kind, scratch.source, scratch.target) == (
        "volume",
        volume_name("srv1", "loom", "scratch"),
        "/scratch",
    )
    assert (host.kind, host.source, host.target, host.read_only) == ("bind", "/srv/data/bolts", "/in", True)
    assert pod.volumes == (volume_name("srv1", "loom", "scratch"),)


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        ({"name": "nope", "mountPath": "/x"}, r"volumeMounts\[0\]: the workflow declares no volume 'nope'"),
        ({"name": "scratch", "mountPath": "/x", "subPath": "a"}, r"volumeMounts\[0\]\.subPath"),
        ({"name": "scratch", "mountPath": "relative"}, "must be an absolute path"),
    ],
)
def test_bad_volume_mounts_name_the_field(mount: dict[str, object], message: str) -> None:
    volumes = [workflow_pb2.Volume(name="scratch", empty_dir=workflow_pb2.EmptyDirVolumeSource())]
    with pytest.raises(PlanError, match=message):
        plan({"container": {"image": "busybox", "volumeMounts": [mount]}}, volumes=volumes)


def test_resources_become_engine_limits() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "32Mi"}}
    main = plan({"container": {"image": "busybox", "resources": resources}}).main
    assert (main.nano_cpus, main.memory_bytes) == (500_000_000, 64 * 2**20)
    assert (main.cpu_shares, main.memory_reservation_bytes) == (256, 32 * 2**20)
    with pytest.raises(PlanError, match=r"container\.resources\.limits\.nvidia\.com/gpu"):
        plan({"container": {"image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "1"}}}})
    with pytest.raises(PlanError, match="not a quantity"):
        plan({"container": {"image": "busybox", "resources": {"limits": {"memory": "plenty"}}}})


def test_pull_policies() -> None:
    assert plan({"container": {"image": "busybox"}}).pull_policies == {"busybox": "IfNotPresent"}
    sidecar = {"name": "s", "image": "busybox", "imagePullPolicy": "Always"}
    assert plan({"container": {"image": "busybox"}, "sidecars": [sidecar]}).pull_policies == {"busybox": "Always"}
    with pytest.raises(PlanError, match="imagePullPolicy 'Sometimes'"):
        plan({"container": {"image": "busybox", "imagePullPolicy": "Sometimes"}})


def test_sidecars_join_mains_network_namespace() -> None:
    pod = plan({"container": {"image": "busybox"}, "sidecars": [{"name": "web", "image": "nginx", "args": ["-g"]}]})
    (web,) = pod.sidecars
    assert web.network == f"container:{pod.main.name}"
    assert web.labels["treadle.container"] == "web"
    assert (web.entrypoint, web.command) == (None, ["-g"])
    with pytest.raises(PlanError, match="is the main container's"):
        plan({"container": {"image": "busybox"}, "sidecars": [{"name": "main", "image": "busybox"}]})


def test_layout_mirrors_mains_filesystem(tmp_path: Path) -> None:
    layout = ContainerLayout.for_attempt(tmp_path, "loom", "loom-1", 0)
    assert layout.host_path("/tmp/out.txt") == layout.rootfs / "tmp" / "out.txt"
    assert layout.host_path("out.txt", cwd="/work") == layout.rootfs / "work" / "out.txt"
    assert layout.host_path("../../etc/passwd", cwd="/tmp") == layout.rootfs / "etc" / "passwd"


def test_staged_and_output_paths() -> None:
    template = template_from_dict(
        {
            "name": "t",
            "script": {"image": "busybox", "source": "true"},
            "inputs": {"artifacts": [{"name": "a", "path": "/tmp/in/a.txt"}]},
            "outputs": {
                "parameters": [{"name": "p", "valueFrom": {"path": "p.txt"}}],
                "artifacts": [{"name": "d", "path": "/tmp/out"}, {"name": "f", "path": "/tmp/out/f.txt"}],
            },
        }
    )
    assert staged_paths(template, "/") == [SCRIPT_PATH, "/tmp/in/a.txt"]
    # Shallower paths first: a file inside an output directory comes out with that directory.
    assert output_paths(template, "/work") == ["/tmp/out", "/work/p.txt", "/tmp/out/f.txt"]


def test_staged_files_leave_their_parents_alone(tmp_path: Path) -> None:
    layout = ContainerLayout.for_attempt(tmp_path, "loom", "loom-1", 0)
    layout.create()
    script = layout.host_path(SCRIPT_PATH)
    script.parent.mkdir(parents=True)
    script.write_text("echo hi")
    tar_path = pack_staged(layout, [SCRIPT_PATH, "/tmp/in/missing.txt"])
    assert tar_path is not None
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [SCRIPT_PATH.lstrip("/")]  # no ".treadle/" entry: parents keep their mode
    assert (members[0].uid, members[0].gid) == (0, 0)
    assert pack_staged(layout, ["/tmp/in/missing.txt"]) is None
