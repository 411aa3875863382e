"""wait: what Argo's wait container does. Collect parameters, upload artifacts and the log, build the report."""

from __future__ import annotations

import asyncio
import logging
import os

from treadle.archive import ArchiveKind, pack_artifact
from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import TreadleError
from treadle.executor.init import PreparedStep, transfer_timeout
from treadle.executor.main import MainResult
from treadle.executor.rpc import ServiceChannels, step_metadata
from treadle.executor.tracing import step_span
from treadle.outputs.v1 import outputs_pb2
from treadle.services.artifacts.client import upload_file
from treadle.telemetry import names
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

LOG_ARTIFACT_NAME = "main-logs"
LOG_SUFFIX = ".log"
Phase = workflow_pb2.NodePhase


def trim_one_newline(text: str) -> str:
    """Argo trims exactly one trailing newline from results and parameters (strings.TrimSuffix(s, "\\n"))."""
    return text[:-1] if text.endswith("\n") else text


def read_output_parameters(prepared: PreparedStep, errors: list[str]) -> list[workflow_pb2.Parameter]:
    """Parameters with valueFrom.path: the file's text, else valueFrom.default, else an error in errors."""
    values: list[workflow_pb2.Parameter] = []
    for parameter in prepared.template.outputs.parameters:
        if not parameter.value_from.path:
            continue  # not the executor's to fill (Argo's executor skips these too)
        attributes = {names.PARAMETER_NAME: parameter.name}
        with step_span(f"{names.SPAN_PARAMETER} {parameter.name}", prepared.launch, **attributes):
            value = _read_parameter(prepared, parameter, errors)
        if value is not None:
            values.append(value)
    return values


def _read_parameter(
    prepared: PreparedStep, parameter: workflow_pb2.Parameter, errors: list[str]
) -> workflow_pb2.Parameter | None:
    source = parameter.value_from
    try:
        text = prepared.layout.host_path(source.path, cwd=prepared.cwd).read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        if not source.HasField("default"):
            errors.append(f"output parameter {parameter.name!r}: cannot read {source.path}: {exc.strerror}")
            return None
        text = source.default
    return workflow_pb2.Parameter(name=parameter.name, value=trim_one_newline(text))


class _Uploader:
    """Uploads one step's outputs; every failure is recorded in errors, never raised."""

    def __init__(self, channels: ServiceChannels, prepared: PreparedStep, errors: list[str]) -> None:
        self._prepared = prepared
        self._stub = channels.artifacts(prepared.launch.artifacts)
        self._metadata = step_metadata(prepared.launch.token, prepared.launch.traceparent)
        self._errors = errors

    async def upload(self, name: str, path: os.PathLike[str], suffix: str) -> artifacts_pb2.ArtifactInfo:
        header = artifacts_pb2.UploadHeader(
            workflow=self._prepared.launch.workflow,
            pod_name=self._prepared.context.pod_name,
            artifact_name=name,
            suffix=suffix,
        )
        with step_span(f"{names.SPAN_UPLOAD} {name}", self._prepared.launch, **{names.ARTIFACT_NAME: name}) as span:
            size = os.stat(path).st_size
            span.set_attribute(names.ARTIFACT_BYTES, size)
            info = await upload_file(self._stub, header, path, timeout=transfer_timeout(size), metadata=self._metadata)
            span.set_attribute(names.ARTIFACT_KEY, info.key)
            return info

    async def output_artifact(self, artifact: workflow_pb2.Artifact) -> workflow_pb2.Artifact | None:
        layout = self._prepared.layout
        source = layout.host_path(artifact.path, cwd=self._prepared.cwd)
        if not os.path.lexists(source):
            if not artifact.optional:
                self._errors.append(f"output artifact {artifact.name!r}: {artifact.path} does not exist")
            return None
        kind: ArchiveKind = "none" if artifact.archive.HasField("none") else "tgz"
        tar = artifact.archive.tar
        level = tar.compression_level if tar.HasField("compression_level") else None
        try:
            if level is None:
                packed = await asyncio.to_thread(pack_artifact, source, layout.staging, archive=kind)
            else:
                packed = await asyncio.to_thread(
                    pack_artifact, source, layout.staging, archive=kind, compression_level=level
                )
            info = await self.upload(artifact.name, packed.path, packed.suffix)
        except (TreadleError, OSError) as exc:
            self._errors.append(f"output artifact {artifact.name!r}: {exc}")
            return None
        stored = workflow_pb2.StoredArtifact(
            key=info.key, size_bytes=info.size_bytes, sha256=info.sha256, archive=packed.archive
        )
        return workflow_pb2.Artifact(name=artifact.name, stored=stored)

    async def main_log(self) -> workflow_pb2.StoredArtifact | None:
        try:
            info = await self.upload(LOG_ARTIFACT_NAME, self._prepared.layout.log_file, LOG_SUFFIX)
        except (TreadleError, OSError) as exc:
            self._errors.append(f"saving the log failed: {exc}")
            return None
        return workflow_pb2.StoredArtifact(key=info.key, size_bytes=info.size_bytes, sha256=info.sha256, archive="none")


def outcome(
    prepared: PreparedStep, result: MainResult, errors: list[str]
) -> tuple[workflow_pb2.NodePhase.ValueType, str]:
    """The phase and message: the command's failure first, then the executor's problems."""
    if result.deadline_exceeded:
        return Phase.NODE_PHASE_FAILED, f"step exceeded its deadline of {prepared.launch.deadline_seconds:g} seconds"
    if result.exit_code != 0:
        return Phase.NODE_PHASE_FAILED, f"exit code {result.exit_code}"
    if errors:
        return Phase.NODE_PHASE_ERROR, "; ".join(errors)
    return Phase.NODE_PHASE_SUCCEEDED, ""


async def run_wait(
    channels: ServiceChannels, prepared: PreparedStep, result: MainResult
) -> outputs_pb2.ReportStepOutputsRequest:
    """Collect and upload everything main left behind (artifacts and log concurrently); return the report."""
    errors: list[str] = []
    parameters = read_output_parameters(prepared, errors)
    uploader = _Uploader(channels, prepared, errors)
    declared = list(prepared.template.outputs.artifacts)
    saved, log_artifact = await asyncio.gather(
        asyncio.gather(*(uploader.output_artifact(artifact) for artifact in declared)), uploader.main_log()
    )
    phase, message = outcome(prepared, result, errors)
    outputs = workflow_pb2.Outputs(
        parameters=parameters,
        artifacts=[artifact for artifact in saved if artifact is not None],
        result=trim_one_newline(result.stdout.decode("utf-8", errors="replace")),
        exit_code=str(result.exit_code),
    )
    launch = prepared.launch
    report = outputs_pb2.ReportStepOutputsRequest(
        workflow=launch.workflow,
        node_id=launch.node_id,
        attempt=launch.attempt,
        phase=phase,
        message=message,
        outputs=outputs,
    )
    if log_artifact is not None:
        report.log.CopyFrom(log_artifact)
    return report
