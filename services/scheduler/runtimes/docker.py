"""The Docker runtime: every step runs in its own image, as a "pod" of containers on a real Docker engine.

    treadle serve all --runtime docker [--docker-host unix:///path/docker.sock] [--secrets-dir DIR]

A launch starts a DockerPod task (docker_pod.py: init, main and sidecars, wait).
Per workflow, the runtime keeps a user-defined network, which every pod joins
(so a daemon's address is reachable from the other steps), and one Docker
volume per emptyDir volume the workflow declares. Everything it creates
carries labels (docker_plan.LABEL_*), so that

    docker ps -a --filter label=treadle.workflow=NAME

finds a workflow's containers, and so that `cleanup` removes, once the
workflow is over, every container, network and volume it had. `start`
removes what an earlier process of this server left behind (its attempts are
relaunched as new ones), and `close` kills the pods still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from treadle.executor.layout import workflow_dir
from treadle.executor.rpc import ServiceChannels
from treadle.executor.step import StepOutcome
from treadle.secrets import SecretFiles
from treadle.services.scheduler.runtimes.base import DaemonCallback, ExitCallback, LaunchSpec, StepDaemoned, StepExit
from treadle.services.scheduler.runtimes.docker_engine import DockerEngine, EngineError, NameConflict
from treadle.services.scheduler.runtimes.docker_images import ImagePuller
from treadle.services.scheduler.runtimes.docker_plan import (
    DEFAULT_PULL_POLICY,
    PULL_POLICIES,
    network_name,
    server_labels,
    workflow_labels,
)
from treadle.services.scheduler.runtimes.docker_pod import DockerPod, PodSettings

log = logging.getLogger(__name__)

Key = tuple[str, str, int]

# How long cleanup lets a finished workflow's pods finish reporting before it kills them.
CLEANUP_GRACE_SECONDS = 30.0
# How long close() waits for pods and cleanups to end.
CLOSE_TIMEOUT_SECONDS = 20.0
# Pauses between tries to remove a network or volume still in use.
IN_USE_PAUSES = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class DockerSettings:
    # Host-side scratch space of each step (staged inputs, copied outputs, the log).
    steps_dir: Path
    # This server's id: in the names and labels of what it creates, so servers sharing an engine keep apart.
    instance: str
    # The engine's address; empty means DOCKER_HOST, or the default socket.
    docker_host: str = ""
    # Where env valueFrom.secretKeyRef values are read from: <secrets_dir>/<name>/<key>.
    secrets_dir: Path | None = None
    # imagePullPolicy for containers that give none.
    default_pull_policy: str = DEFAULT_PULL_POLICY
    # SIGTERM to SIGKILL, when a container is stopped (a deadline, sidecars after main).
    stop_grace_seconds: float = 2.0


def instance_id(data_dir: Path) -> str:
    """A short id that stays the same across restarts of the server using data_dir."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]


def _needs_retry(task: asyncio.Task[None]) -> bool:
    """The last creation failed (or was cancelled)."""
    return task.done() and (task.cancelled() or task.exception() is not None)


class _WorkflowResources:
    """The network and emptyDir volumes of one workflow, created once on first use."""

    def __init__(self, engine: DockerEngine, instance: str, workflow: str) -> None:
        self._engine = engine
        self._labels = workflow_labels(instance, workflow)
        self.network = network_name(instance, workflow)
        self._network_ready: asyncio.Task[None] | None = None
        self._volumes: dict[str, asyncio.Task[None]] = {}

    async def prepare(self, volumes: tuple[str, ...], network: bool) -> str:
        """Make these volumes exist, and the network if asked (one creation of each at a time); the network's name."""
        waits = []
        if network:
            ready = self._network_ready
            if ready is None or _needs_retry(ready):
                ready = self._network_ready = asyncio.create_task(self._create_network())
            waits.append(asyncio.shield(ready))
        for volume in volumes:
            task = self._volumes.get(volume)
            if task is None or _needs_retry(task):
                task = self._volumes[volume] = asyncio.create_task(self._engine.create_volume(volume, self._labels))
            waits.append(asyncio.shield(task))
        await asyncio.gather(*waits)
        return self.network

    async def _create_network(self) -> None:
        with contextlib.suppress(NameConflict):  # made by an earlier process of this server for the same workflow
            await self._engine.create_network(self.network, self._labels)

    async def remove(self) -> None:
        """Remove every network and volume labelled with this workflow."""
        for network in await self._engine.networks(self._labels):
            await _retry_while_in_use(self._engine.remove_network, network)
        for volume in await self._engine.volumes(self._labels):
            await _retry_while_in_use(self._engine.remove_volume, volume)


async def _retry_while_in_use(remove: Callable[[str], Awaitable[None]], name: str) -> None:
    """A network or volume is busy for a moment after the engine removed its last container."""
    for pause in (*IN_USE_PAUSES, None):
        try:
            await remove(name)
            return
        except EngineError as exc:
            if pause is None or not any(word in str(exc) for word in ("in use", "active endpoints")):
                raise
            await asyncio.sleep(pause)


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: DockerSettings, engine: DockerEngine | None = None) -> None:
        if settings.default_pull_policy not in PULL_POLICIES:
            raise ValueError(f"default imagePullPolicy must be one of {', '.join(PULL_POLICIES)}")
        self._settings = settings
        self._engine = engine
        self._on_exit: ExitCallback | None = None
        self._on_daemoned: DaemonCallback | None = None
        self._channels = ServiceChannels()
        self._pods: dict[Key, tuple[DockerPod, asyncio.Task[None]]] = {}
        self._cancel_reasons: dict[Key, str] = {}
        self._workflows: dict[str, _WorkflowResources] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._puller: ImagePuller | None = None
        self._pod_settings = PodSettings(
            steps_dir=settings.steps_dir,
            instance=settings.instance,
            secrets=SecretFiles(settings.secrets_dir),
            default_pull_policy=settings.default_pull_policy,
            stop_grace_seconds=settings.stop_grace_seconds,
        )
        self._closed = False

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            raise RuntimeError("the Docker runtime has not been started")
        return self._engine

    async def start(self, on_exit: ExitCallback, on_daemoned: DaemonCallback | None = None) -> None:
        self._on_exit = on_exit
        self._on_daemoned = on_daemoned
        self._closed = False
        try:
            if self._engine is None:
                self._engine = DockerEngine.connect(self._settings.docker_host)
            await self._engine.ping()
            leftovers = await self._engine.containers(server_labels(self._settings.instance))
        except EngineError as exc:
            raise RuntimeError(f"--runtime docker: {exc}") from None
        self._puller = ImagePuller(self._engine)
        if leftovers:
            log.info("removing %d container(s) left by an earlier run of this server", len(leftovers))
            await asyncio.gather(*(self._engine.remove(c) for c in leftovers), return_exceptions=True)
        log.info("docker runtime: engine at %s", self._engine.address)

    async def launch(self, spec: LaunchSpec) -> None:
        key = (spec.workflow, spec.node_id, spec.attempt)
        if key in self._pods or self._closed:
            return
        assert self._puller is not None, "launch before start"
        resources = self._workflows.get(spec.workflow)
        if resources is None:
            resources = self._workflows[spec.workflow] = _WorkflowResources(
                self.engine, self._settings.instance, spec.workflow
            )
        pod = DockerPod(
            spec, self._pod_settings, self.engine, self._puller, self._channels, resources.prepare, self._daemoned
        )
        task = asyncio.create_task(self._run(key, pod), name=f"pod {pod.launch.describe()}")
        self._pods[key] = (pod, task)

    async def _run(self, key: Key, pod: DockerPod) -> None:
        try:
            outcome = await pod.run()
        except asyncio.CancelledError:
            reason = self._cancel_reasons.get(key)
            if reason is None:
                raise  # closing: the scheduler relaunches the attempt when it starts again
            outcome = StepOutcome(reported=False, message=reason)
        finally:
            self._pods.pop(key, None)
            self._cancel_reasons.pop(key, None)
        await self._notify(StepExit(*key, reported=outcome.reported, message=outcome.message))

    async def _daemoned(self, event: StepDaemoned) -> None:
        if self._on_daemoned is not None and not self._closed:
            await self._on_daemoned(event)

    async def cancel(self, workflow: str, node_id: str, attempt: int, reason: str) -> None:
        self._cancel((workflow, node_id, attempt), reason)

    def _cancel(self, key: Key, reason: str) -> None:
        """Cancel a pod once (it then removes its containers); later cancels of the same pod do nothing."""
        entry = self._pods.get(key)
        if entry is not None and not entry[1].done() and key not in self._cancel_reasons:
            self._cancel_reasons[key] = reason
            entry[1].cancel()

    async def cleanup(self, workflow: str) -> None:
        """Remove the workflow's containers, network and volumes, in the background (this is called while its
        last step reports: waiting here would wait for that very report)."""
        if self._engine is None:
            return
        task = asyncio.create_task(self._clean(workflow), name=f"docker cleanup {workflow}")
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _clean(self, workflow: str) -> None:
        pods = [(key, pod, task) for key, (pod, task) in list(self._pods.items()) if key[0] == workflow]
        for key, pod, _ in pods:
            if not pod.finishing:  # still running user code (a daemon, a step of a deleted workflow)
                self._cancel(key, "the workflow is over")
        if pods:
            await asyncio.wait([task for _, _, task in pods], timeout=CLEANUP_GRACE_SECONDS)
            for key, _, _ in pods:
                self._cancel(key, "the workflow is over")
        engine = self.engine
        resources = self._workflows.pop(workflow, None) or _WorkflowResources(engine, self._settings.instance, workflow)
        try:
            leftovers = await engine.containers(workflow_labels(self._settings.instance, workflow))
            await asyncio.gather(*(engine.remove(c) for c in leftovers))
            await resources.remove()
        except EngineError as exc:
            log.warning("cleaning up workflow %s on the Docker engine failed: %s", workflow, exc)
        await asyncio.to_thread(shutil.rmtree, workflow_dir(self._settings.steps_dir, workflow), True)

    async def close(self) -> None:
        """Kill every running pod (no exit callbacks: the scheduler relaunches them when it starts again)."""
        self._closed = True
        tasks = [task for _, task in self._pods.values()]
        for task in tasks:
            task.cancel()
        pending = tasks + list(self._cleanups)
        if pending:
            _, late = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_SECONDS)
            if late:
                log.warning("%d Docker pod(s) or cleanup(s) did not end in time", len(late))
        self._pods.clear()
        await self._channels.close()
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.close()
            self._engine = None

    async def _notify(self, step_exit: StepExit) -> None:
        if self._on_exit is None or self._closed:
            return
        try:
            await self._on_exit(step_exit)
        except Exception:
            log.exception(
                "exit callback failed for %s/%s attempt %d", step_exit.workflow, step_exit.node_id, step_exit.attempt
            )
