"""From a resolved template to the containers of its "pod": names, labels, command, env, mounts and limits.

Everything here is decided before any container exists, and every problem is
a PlanError whose text names the template field (`container.env[2]`,
`sidecars[0].resources.limits.memory`), so the step ends with a message the
author can act on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from treadle.errors import TreadleError
from treadle.secrets import SecretFiles
from treadle.services.scheduler.runtimes.docker_engine import ContainerConfig, Mount
from treadle.services.scheduler.runtimes.quantities import QuantityError, memory_bytes, nano_cpus, parse_quantity
from treadle.workflow.v1 import workflow_pb2

# Labels on every container, network and volume the runtime creates: `docker ps -a --filter label=treadle.workflow=W`.
LABEL_SERVER = "treadle.server"
LABEL_WORKFLOW = "treadle.workflow"
LABEL_WORKFLOW_UID = "treadle.workflow-uid"
LABEL_NODE = "treadle.node"
LABEL_ATTEMPT = "treadle.attempt"
LABEL_CONTAINER = "treadle.container"
MAIN = "main"
# Where a script template's source is staged in main's filesystem.
SCRIPT_PATH = "/.treadle/script"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# Without a registry at hand, locally built images are the rule: Kubernetes' default (Always for :latest) is not.
DEFAULT_PULL_POLICY = "IfNotPresent"
# Resources Docker cannot limit, that a step may still ask for.
IGNORED_RESOURCES = ("ephemeral-storage",)

AnyContainer = workflow_pb2.Container | workflow_pb2.ScriptTemplate


class PlanError(TreadleError):
    """The template asks for something the Docker runtime cannot give it; str() names the field."""


def docker_name(text: str) -> str:
    """A valid Docker object name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]", "-", text)
    return cleaned if cleaned[:1].isalnum() else f"x{cleaned}"


def server_labels(instance: str) -> dict[str, str]:
    return {LABEL_SERVER: instance}


def workflow_labels(instance: str, workflow: str) -> dict[str, str]:
    return {LABEL_SERVER: instance, LABEL_WORKFLOW: workflow}


def network_name(instance: str, workflow: str) -> str:
    return docker_name(f"treadle-{instance}-{workflow}")


def volume_name(instance: str, workflow: str, volume: str) -> str:
    return docker_name(f"treadle-{instance}-{workflow}-{volume}")


@dataclass(frozen=True)
class PodIdentity:
    """Which step attempt a container belongs to, and which server runs it."""

    instance: str
    workflow: str
    workflow_uid: str
    node_id: str
    pod_name: str
    attempt: int

    def labels(self, container: str) -> dict[str, str]:
        return {
            LABEL_SERVER: self.instance,
            LABEL_WORKFLOW: self.workflow,
            LABEL_WORKFLOW_UID: self.workflow_uid,
            LABEL_NODE: self.node_id,
            LABEL_ATTEMPT: str(self.attempt),
            LABEL_CONTAINER: container,
        }

    def container_name(self, container: str) -> str:
        return docker_name(f"treadle-{self.instance}-{self.pod_name or self.node_id}-{self.attempt}-{container}")


@dataclass(frozen=True)
class PodPlan:
    main: ContainerConfig
    # Created after main has started, each sharing its network namespace.
    sidecars: tuple[ContainerConfig, ...]
    pull_policies: dict[str, str]
    # Docker volumes (the workflow's emptyDirs) that must exist before the containers are created.
    volumes: tuple[str, ...]


class _Planner:
    def __init__(
        self,
        identity: PodIdentity,
        volumes: Sequence[workflow_pb2.Volume],
        secrets: SecretFiles,
        default_pull_policy: str,
    ) -> None:
        self._identity = identity
        self._volumes = {volume.name: volume for volume in volumes}
        self._secrets = secrets
        self._default_pull_policy = default_pull_policy
        self.needed_volumes: list[str] = []
        self.pull_policies: dict[str, str] = {}

    def container(
        self,
        spec: AnyContainer,
        where: str,
        role: str,
        *,
        network: str,
        entrypoint: list[str] | None,
        command: list[str] | None,
    ) -> ContainerConfig:
        if not spec.image:
            raise PlanError(f"{where}.image is required")
        limits = self._resources(spec.resources, where)
        self.pull_policies[spec.image] = self._pull_policy(spec, where, self.pull_policies.get(spec.image))
        return ContainerConfig(
            name=self._identity.container_name(role),
            image=spec.image,
            labels=self._identity.labels(role),
            entrypoint=entrypoint,
            command=command,
            env=self._env(spec.env, where),
            working_dir=spec.working_dir,
            mounts=self._mounts(spec.volume_mounts, where),
            network=network,
            **limits,
        )

    def _pull_policy(self, spec: AnyContainer, where: str, earlier: str | None) -> str:
        policy = spec.image_pull_policy or self._default_pull_policy
        if policy not in PULL_POLICIES:
            raise PlanError(f"{where}.imagePullPolicy {policy!r} is not one of {', '.join(PULL_POLICIES)}")
        if earlier == "Always" or policy == "Always":
            return "Always"  # the same image asked for twice: the stricter policy wins
        return policy

    def _env(self, variables: Sequence[workflow_pb2.EnvVar], where: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for i, variable in enumerate(variables):
            field = f"{where}.env[{i}]"
            if not variable.name:
                raise PlanError(f"{field}.name is required")
            if not variable.HasField("value_from"):
                env[variable.name] = variable.value
                continue
            ref = variable.value_from.secret_key_ref
            if not ref.name or not ref.key:
                raise PlanError(f"{field}.valueFrom: only secretKeyRef with a name and a key is supported")
            try:
                value = self._secrets.read_exact(ref.name, ref.key, field=f"{field}.valueFrom.secretKeyRef")
            except TreadleError as exc:
                raise PlanError(f"{field} ({variable.name}): {exc}") from None
            if value is None:
                if ref.optional:
                    continue
                raise PlanError(f"{field} ({variable.name}): secret {ref.name!r} has no key {ref.key!r}")
            env[variable.name] = value
        return env

    def _mounts(self, mounts: Sequence[workflow_pb2.VolumeMount], where: str) -> tuple[Mount, ...]:
        out: list[Mount] = []
        for i, mount in enumerate(mounts):
            field = f"{where}.volumeMounts[{i}]"
            if not mount.mount_path.startswith("/"):
                raise PlanError(f"{field}.mountPath must be an absolute path, not {mount.mount_path!r}")
            volume = self._volumes.get(mount.name)
            if volume is None:
                raise PlanError(f"{field}: the workflow declares no volume {mount.name!r} (spec.volumes)")
            if volume.HasField("host_path"):
                source = volume.host_path.path.rstrip("/") or "/"
                if mount.sub_path:
                    source = f"{source.rstrip('/')}/{mount.sub_path.lstrip('/')}"
                out.append(Mount(mount.mount_path, source, "bind", mount.read_only))
            elif volume.HasField("empty_dir"):
                if mount.sub_path:
                    raise PlanError(f"{field}.subPath: the Docker runtime cannot mount part of an emptyDir volume")
                name = volume_name(self._identity.instance, self._identity.workflow, volume.name)
                if name not in self.needed_volumes:
                    self.needed_volumes.append(name)
                out.append(Mount(mount.mount_path, name, "volume", mount.read_only))
            else:
                raise PlanError(f"{field}: volume {mount.name!r} is neither emptyDir nor hostPath")
        return tuple(out)

    def _resources(self, resources: workflow_pb2.ResourceRequirements, where: str) -> dict[str, int | None]:
        for kind, values in (("limits", resources.limits), ("requests", resources.requests)):
            for name in values:
                if name not in ("cpu", "memory", *IGNORED_RESOURCES):
                    raise PlanError(f"{where}.resources.{kind}.{name}: the Docker runtime supports cpu and memory")
        try:
            limits = resources.limits
            requests = resources.requests
            cpu_request = parse_quantity(requests["cpu"]) if "cpu" in requests else None
            return {
                "memory_bytes": memory_bytes(limits["memory"]) if "memory" in limits else None,
                "nano_cpus": nano_cpus(limits["cpu"]) if "cpu" in limits else None,
                "memory_reservation_bytes": memory_bytes(requests["memory"]) if "memory" in requests else None,
                # Docker's relative weight: 1024 per cpu, as the kubelet sets it.
                "cpu_shares": None if cpu_request is None else max(2, int(cpu_request * 1024)),
            }
        except QuantityError as exc:
            raise PlanError(f"{where}.resources: {exc}") from None


def main_command(template: workflow_pb2.Template, spec: AnyContainer) -> tuple[list[str] | None, list[str] | None]:
    """ENTRYPOINT and CMD of main, as Kubernetes maps command and args (None keeps the image's)."""
    command = list(spec.command) or None
    args = list(spec.args)
    if template.HasField("script"):
        if command is None:
            return [SCRIPT_PATH], args or None  # the script runs by its shebang (it is staged executable)
        return command, [SCRIPT_PATH, *args]
    return command, args or None


def plan_pod(
    template: workflow_pb2.Template,
    identity: PodIdentity,
    *,
    volumes: Sequence[workflow_pb2.Volume],
    secrets: SecretFiles,
    network: str,
    default_pull_policy: str = DEFAULT_PULL_POLICY,
) -> PodPlan:
    """The containers of one step attempt. Raises PlanError naming the field at fault."""
    planner = _Planner(identity, volumes, secrets, default_pull_policy)
    if template.HasField("script"):
        spec: AnyContainer = template.script
        where = "script"
    elif template.HasField("container"):
        spec, where = template.container, "container"
    else:
        raise PlanError(f"template {template.name!r} has neither a container nor a script to run")
    entrypoint, command = main_command(template, spec)
    main = planner.container(spec, where, MAIN, network=network, entrypoint=entrypoint, command=command)
    sidecars = []
    for i, sidecar in enumerate(template.sidecars):
        role = sidecar.name or f"sidecar-{i}"
        if role == MAIN:
            raise PlanError(f"sidecars[{i}].name {MAIN!r} is the main container's")
        sidecars.append(
            planner.container(
                sidecar,
                f"sidecars[{i}]",
                role,
                # The sidecar joins main's network namespace (main is started first), as a pod's containers do.
                network=f"container:{main.name}",
                entrypoint=list(sidecar.command) or None,
                command=list(sidecar.args) or None,
            )
        )
    return PodPlan(
        main=main,
        sidecars=tuple(sidecars),
        pull_policies=dict(planner.pull_policies),
        volumes=tuple(planner.needed_volumes),
    )
