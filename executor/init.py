"""init: what Argo's init container does. Fetch the step's context, stage its script and input artifacts."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

import grpc

from treadle.executor.errors import ExecutorError
from treadle.executor.launch import StepLaunch
from treadle.executor.layout import StepLayout
from treadle.executor.protocol import delivered_context
from treadle.executor.rpc import ServiceChannels, describe_rpc_error, step_metadata
from treadle.executor.tracing import step_span
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.scheduler.v1 import scheduler_pb2
from treadle.services.artifacts import step_io
from treadle.services.artifacts.step_io import InputArtifactError, StepArtifacts
from treadle.telemetry import names
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

# Transfers get DEFAULT_TIMEOUT plus the time to move their bytes at this (pessimistic) rate.
TRANSFER_BYTES_PER_SECOND = 5_000_000


def transfer_timeout(size_bytes: int) -> float:
    return DEFAULT_TIMEOUT + size_bytes / TRANSFER_BYTES_PER_SECOND


@dataclass(frozen=True)
class PreparedStep:
    """A step ready for main: its context, where its files are, and the command to run."""

    launch: StepLaunch
    context: scheduler_pb2.GetStepContextResponse
    layout: StepLayout
    argv: list[str]
    # The working directory as the command sees it.
    cwd: str

    @property
    def template(self) -> workflow_pb2.Template:
        return self.context.template


def main_spec(template: workflow_pb2.Template) -> workflow_pb2.Container | workflow_pb2.ScriptTemplate:
    """The container or script the step runs."""
    if template.HasField("script"):
        return template.script
    if template.HasField("container"):
        return template.container
    raise ExecutorError(f"template {template.name!r} has neither a container nor a script to run")


def build_command(template: workflow_pb2.Template, script_path: str) -> list[str]:
    """Argo's rule: a script runs command + [script file] + args; a container runs command + args.

    A container without a command runs its args directly (there is no image entrypoint to fall back on).
    """
    spec = main_spec(template)
    if isinstance(spec, workflow_pb2.ScriptTemplate):
        argv = [*spec.command, script_path, *spec.args]
    else:
        argv = [*spec.command, *spec.args]
    if not argv:
        raise ExecutorError(f"template {template.name!r} has no command or args to run")
    return argv


def working_dir(template: workflow_pb2.Template, layout: StepLayout) -> str:
    """workingDir, else the private /tmp. One under the private /tmp is created, as a container runtime would."""
    cwd = main_spec(template).working_dir or layout.tmp_view
    host = layout.host_path(cwd)
    if host.is_relative_to(layout.tmp):
        host.mkdir(parents=True, exist_ok=True)
    return cwd


async def fetch_context(channels: ServiceChannels, launch: StepLaunch) -> scheduler_pb2.GetStepContextResponse:
    request = scheduler_pb2.GetStepContextRequest(
        workflow=launch.workflow, node_id=launch.node_id, attempt=launch.attempt
    )
    try:
        response: scheduler_pb2.GetStepContextResponse = await channels.scheduler(launch.scheduler).GetStepContext(
            request, timeout=DEFAULT_TIMEOUT, metadata=step_metadata(launch.token, launch.traceparent)
        )
    except grpc.aio.AioRpcError as exc:
        raise ExecutorError(describe_rpc_error("GetStepContext", exc)) from None
    return response


def stage_script(template: workflow_pb2.Template, layout: StepLayout) -> None:
    path = layout.host_path(layout.script_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template.script.source)
    os.chmod(path, 0o755)  # as Argo does, so a script with a shebang can run without a command


def step_artifacts(
    channels: ServiceChannels, launch: StepLaunch, context: scheduler_pb2.GetStepContextResponse
) -> StepArtifacts:
    """The step as ArtifactService knows it: its pod, the workflow's repository, its token."""
    return StepArtifacts(
        channels.artifacts(launch.artifacts),
        launch.workflow,
        context.pod_name,
        repository=context.artifact_repository,
        metadata=step_metadata(launch.token, launch.traceparent),
        timeout_for=transfer_timeout,
    )


async def stage_input(
    channels: ServiceChannels,
    launch: StepLaunch,
    context: scheduler_pb2.GetStepContextResponse,
    artifact: workflow_pb2.Artifact,
    layout: StepLayout,
    cwd: str,
) -> None:
    """Put one input artifact at its path: raw text, a stored object, or an s3/http/git source
    that ArtifactService imports (services/artifacts/step_io.py)."""
    dest = layout.host_path(artifact.path, cwd=cwd)
    step = step_artifacts(channels, launch, context)
    try:
        if artifact.HasField("raw"):
            placed = await step_io.stage_input(step, artifact, dest, layout.staging)
        else:
            attributes: dict[str, str | int] = {names.ARTIFACT_NAME: artifact.name}
            if artifact.stored.key:
                attributes[names.ARTIFACT_KEY] = artifact.stored.key
            with step_span(f"{names.SPAN_DOWNLOAD} {artifact.name}", launch, **attributes) as span:
                if artifact.stored.key:
                    span.set_attribute(names.ARTIFACT_BYTES, artifact.stored.size_bytes)
                placed = await step_io.stage_input(step, artifact, dest, layout.staging)
    except InputArtifactError as exc:
        raise ExecutorError(str(exc)) from None
    if not placed:
        log.debug("optional input artifact %r is missing; not staged", artifact.name)


async def stage_inputs(
    channels: ServiceChannels,
    launch: StepLaunch,
    context: scheduler_pb2.GetStepContextResponse,
    layout: StepLayout,
    cwd: str,
) -> None:
    """Stage every input artifact concurrently; the first failure cancels the rest."""
    artifacts = list(context.template.inputs.artifacts)
    if not artifacts:
        return
    try:
        async with asyncio.TaskGroup() as group:
            for artifact in artifacts:
                group.create_task(stage_input(channels, launch, context, artifact, layout, cwd))
    except BaseExceptionGroup as failures:
        raise _first_leaf(failures) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def run_init(channels: ServiceChannels, launch: StepLaunch, layout: StepLayout) -> PreparedStep:
    """Fetch the context (unless the launch brought it) and stage the script and inputs.

    Raises ExecutorError, naming what failed.
    """
    context = delivered_context(launch) if launch.context is not None else await fetch_context(channels, launch)
    template = context.template
    argv = build_command(template, layout.script_path)
    cwd = working_dir(template, layout)
    if template.HasField("script"):
        stage_script(template, layout)
    await stage_inputs(channels, launch, context, layout, cwd)
    return PreparedStep(launch=launch, context=context, layout=layout, argv=argv, cwd=cwd)
