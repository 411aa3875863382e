"""One step attempt as a "pod" of containers, the way Argo's docker executor runs one.

    init  (here, the executor's init code)  GetStepContext, script and input artifacts staged;
          main is created and they are copied into it before it starts (docker_files)
    main  (the user's image)                 started; sidecars join its network namespace
    wait  (here, the executor's wait code)   main's exit code, OOMKilled; sidecars stopped;
          outputs copied out with get_archive; result = main's stdout; log saved; ReportStepOutputs

init and wait run in the scheduler's process, beside the engine, and reach the
services over gRPC with the step's token, exactly as the executor does inside
a Kubernetes pod. Nothing of treadle's runs in a container. Whatever happens,
the attempt ends with a report or with a reason why none could be sent, and
every container of the pod is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.trace import Status, StatusCode

from treadle.errors import TreadleError
from treadle.executor.init import PreparedStep, run_init
from treadle.executor.launch import StepLaunch
from treadle.executor.live_log import STREAM_AFTER_SECONDS, LiveLogSender
from treadle.executor.rpc import ServiceChannels
from treadle.executor.step import StepOutcome, error_report, send_report
from treadle.executor.tracing import in_node_span, step_span
from treadle.executor.wait import run_wait
from treadle.outputs.v1 import outputs_pb2
from treadle.secrets import SecretFiles
from treadle.services.scheduler.runtimes.base import LaunchSpec, StepDaemoned
from treadle.services.scheduler.runtimes.docker_engine import ContainerConfig, DockerEngine, EngineError
from treadle.services.scheduler.runtimes.docker_files import (
    ContainerLayout,
    copy_outputs,
    output_paths,
    put_staged,
    staged_paths,
)
from treadle.services.scheduler.runtimes.docker_images import ContainerMaker, ImagePuller
from treadle.services.scheduler.runtimes.docker_plan import LABEL_CONTAINER, PodIdentity, PodPlan, plan_pod
from treadle.services.scheduler.runtimes.docker_wait import MainEnd, MainWaiter, explain, memory_limit
from treadle.telemetry import names
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

# How long the live log's follower may take to see main's last output once main has exited.
FOLLOW_END_SECONDS = 5.0
Phase = workflow_pb2.NodePhase


@dataclass(frozen=True)
class PodSettings:
    """What every pod of one runtime shares."""

    steps_dir: Path
    # This server's id, in every name and label (several servers may share one engine).
    instance: str
    secrets: SecretFiles
    default_pull_policy: str
    # Seconds between SIGTERM and SIGKILL when a container is stopped (deadline, sidecars).
    stop_grace_seconds: float


class DockerPod:
    """One attempt's pod. `run()` once; cancelling it removes the containers."""

    def __init__(
        self,
        spec: LaunchSpec,
        settings: PodSettings,
        engine: DockerEngine,
        puller: ImagePuller,
        channels: ServiceChannels,
        prepare_workflow: Callable[[tuple[str, ...], bool], Awaitable[str]],
        on_daemoned: Callable[[StepDaemoned], Awaitable[None]] | None,
    ) -> None:
        self.spec = spec
        self.launch = StepLaunch(
            workflow=spec.workflow,
            node_id=spec.node_id,
            attempt=spec.attempt,
            token=spec.token,
            scheduler=spec.services.scheduler,
            artifacts=spec.services.artifacts,
            outputs=spec.services.outputs,
            deadline_seconds=spec.deadline_seconds,
            traceparent=spec.traceparent,
        )
        self._settings = settings
        self._engine = engine
        self._channels = channels
        # Makes the given volumes exist, and the workflow's own network when it is asked for; returns its name.
        self._prepare_workflow = prepare_workflow
        self._on_daemoned = on_daemoned
        self._layout = ContainerLayout.for_attempt(settings.steps_dir, spec.workflow, spec.node_id, spec.attempt)
        self._identity = PodIdentity(
            settings.instance, spec.workflow, spec.workflow_uid, spec.node_id, spec.pod_name, spec.attempt
        )
        self._maker = ContainerMaker(engine, puller)
        self._waiter = MainWaiter(engine, self.launch.describe(), settings.stop_grace_seconds)
        self._following = False
        # True once main has exited: the pod is collecting and reporting, no longer running user code.
        self.finishing = False

    async def run(self) -> StepOutcome:
        loop = asyncio.get_running_loop()
        deadline_at = None if self.launch.deadline_seconds is None else loop.time() + self.launch.deadline_seconds
        try:
            with in_node_span(self.launch):
                report = await self._produce_report(deadline_at)
                self.finishing = True
                with step_span(names.SPAN_REPORT, self.launch, **{names.PHASE: Phase.Name(report.phase)}):
                    return await send_report(self._channels, self.launch, report)
        finally:
            await finish_even_if_cancelled(self._tear_down())

    async def _tear_down(self) -> None:
        await self._remove_containers()
        await asyncio.to_thread(self._layout.remove)

    async def _produce_report(self, deadline_at: float | None) -> outputs_pb2.ReportStepOutputsRequest:
        launch = self.launch
        try:
            await asyncio.to_thread(self._layout.create)
            with step_span(names.SPAN_INIT, launch):
                prepared, plan, main_id = await self._init()
            with step_span(names.SPAN_MAIN, launch) as span:
                end = await self._run_main(prepared, plan, main_id, deadline_at)
                span.set_attribute(names.PROCESS_EXIT_CODE, end.result.exit_code)
                if end.result.exit_code != 0:
                    span.set_status(Status(StatusCode.ERROR, f"exit code {end.result.exit_code}"))
            self.finishing = True
            with step_span(names.SPAN_WAIT, launch):
                return await self._wait(prepared, plan, main_id, end)
        except (TreadleError, OSError) as exc:
            return error_report(launch, str(exc))
        except Exception as exc:  # a bug here: still report it rather than leave the step hanging
            log.exception("step %s: unexpected Docker runtime error", launch.describe())
            return error_report(launch, f"docker runtime error: {exc!r}")

    # -- init -----------------------------------------------------------------------------

    async def _init(self) -> tuple[PreparedStep, PodPlan, str]:
        """The executor's init, then main created (not started) with the staged files in it."""
        prepared = await run_init(self._channels, self.launch, self._layout)
        template = prepared.template
        volumes = [
            json_format.ParseDict(volume, workflow_pb2.Volume(), ignore_unknown_fields=True)
            for volume in self.spec.volumes
        ]
        # A workflow with daemons gets a network of its own, where a daemon's address is reachable. Others use
        # the engine's default network, as a bare `docker run` does (joining a user-defined one costs a lot).
        network = await self._prepare_workflow((), self.spec.daemons) if self.spec.daemons else ""
        plan = plan_pod(
            template,
            self._identity,
            volumes=volumes,
            secrets=self._settings.secrets,
            network=network,
            default_pull_policy=self._settings.default_pull_policy,
        )
        if plan.volumes:
            await self._prepare_workflow(plan.volumes, False)
        main_id = await self._maker.create(plan.main, plan.pull_policies[plan.main.image], "main")
        await put_staged(self._engine, main_id, self._layout, staged_paths(template, prepared.cwd))
        return prepared, plan, main_id

    # -- main ---------------------------------------------------------------------------------

    async def _run_main(
        self, prepared: PreparedStep, plan: PodPlan, main_id: str, deadline_at: float | None
    ) -> MainEnd:
        try:
            await self._engine.start(main_id)
        except EngineError as exc:
            raise EngineError(f"main could not start: {exc}") from None
        live_log = LiveLogSender(self._channels.outputs(self.launch.outputs), self.launch)
        live_log.start()
        follower = asyncio.create_task(self._follow_log(main_id, live_log), name=f"log {self.launch.describe()}")
        try:
            await self._start_sidecars(plan, main_id)
            if prepared.template.daemon:
                await self._announce_daemon(main_id)
            end = await self._waiter.wait(main_id, deadline_at)
        except BaseException:
            follower.cancel()
            live_log.abort()
            raise
        if not self._following:
            follower.cancel()  # a quick step: never followed
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(follower, FOLLOW_END_SECONDS)
        await live_log.finish()
        return end

    async def _start_sidecars(self, plan: PodPlan, main_id: str) -> None:
        async def start(config: ContainerConfig) -> None:
            role = config.labels.get(LABEL_CONTAINER, config.name)
            try:
                sidecar = await self._maker.create(config, plan.pull_policies[config.image], f"sidecar {role!r}")
                await self._engine.start(sidecar)
            except EngineError:
                if not (await self._engine.state(main_id)).running:
                    return  # main is done already: its network namespace, which the sidecar would join, is gone
                raise

        if plan.sidecars:
            await asyncio.gather(*(start(config) for config in plan.sidecars))

    async def _announce_daemon(self, main_id: str) -> None:
        network = await self._prepare_workflow((), True)
        ip = await self._engine.address_on(main_id, network)
        if self._on_daemoned is not None:
            await self._on_daemoned(StepDaemoned(self.spec.workflow, self.spec.node_id, self.spec.attempt, ip))

    async def _follow_log(self, main_id: str, live_log: LiveLogSender) -> None:
        """Feed the live log from STREAM_AFTER_SECONDS on (quicker steps are never followed)."""
        await asyncio.sleep(STREAM_AFTER_SECONDS)
        self._following = True
        loop = asyncio.get_running_loop()

        def hand_over(chunk: bytes) -> None:  # called in the engine's worker thread
            loop.call_soon_threadsafe(live_log.write, chunk)

        with contextlib.suppress(EngineError):
            await self._engine.follow_logs(main_id, hand_over)

    # -- wait -----------------------------------------------------------------------------------

    async def _wait(
        self, prepared: PreparedStep, plan: PodPlan, main_id: str, end: MainEnd
    ) -> outputs_pb2.ReportStepOutputsRequest:
        """Sidecars told to stop while main's outputs and log are copied out; then the executor's wait code.

        The sidecars get SIGTERM now and SIGKILL once their grace period is over, after the report (see
        _remove_containers): a sidecar that ignores SIGTERM does not hold the workflow back.
        """
        sidecars = [c for c in self._maker.created if c != main_id]
        _, problems, _ = await asyncio.gather(
            asyncio.gather(*(self._engine.signal(sidecar, "SIGTERM") for sidecar in sidecars)),
            copy_outputs(self._engine, main_id, self._layout, output_paths(prepared.template, prepared.cwd)),
            self._engine.save_logs(main_id, self._layout.log_file),
        )
        report = await run_wait(self._channels, prepared, end.result)
        if problems and report.phase != Phase.NODE_PHASE_FAILED:
            report.phase = Phase.NODE_PHASE_ERROR
            report.message = "; ".join([*problems, report.message] if report.message else problems)
        explain(report, end, memory_limit(prepared.template))
        return report

    async def _remove_containers(self) -> None:
        """Main at once; sidecars once they stopped or their grace period ended."""
        containers, self._maker.created = self._maker.created, []
        grace = self._settings.stop_grace_seconds

        async def remove(container: str, is_main: bool) -> None:
            if not is_main:
                await self._engine.stop(container, grace)
            await self._engine.remove(container)

        removals = (remove(container, i == 0) for i, container in enumerate(containers))
        results = await asyncio.gather(*removals, return_exceptions=True)
        for container, result in zip(containers, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("step %s: removing container %s failed: %s", self.launch.describe(), container, result)


async def finish_even_if_cancelled(work: Awaitable[None]) -> None:
    """Run work to its end (its calls have deadlines), then pass on a cancellation that came meanwhile."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()
