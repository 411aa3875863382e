"""wait: what Argo's wait container does. Collect parameters, upload artifacts and the log, build the report."""

from __future__ import annotations

import asyncio
import logging
import os
from io import FileIO

from treadle.archive import ArchiveKind, pack_artifact
from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import TreadleError
from treadle.executor.init import PreparedStep, step_artifacts, transfer_timeout
from treadle.executor.main import MainResult
from treadle.executor.rpc import ServiceChannels, step_metadata
from treadle.executor.tracing import step_span
from treadle.outputs.v1 import outputs_pb2
from treadle.services.artifacts import step_io, values
from treadle.services.artifacts.client import put_request, read_small, upload_file
from treadle.services.outputs.log_store import INLINE_LOG_BYTES
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
    path = prepared.layout.host_path(source.path, cwd=prepared.cwd)
    try:
        if path.stat().st_size > values.MAX_VALUE_BYTES:
            errors.append(
                f"output parameter {parameter.name!r}: {source.path} is longer than {values.MAX_VALUE_BYTES} bytes, "
                "the most a parameter may hold; declare it as an output artifact instead"
            )
            return None
        text = path.read_bytes().decode("utf-8", errors="replace")
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
        self.step = step_artifacts(channels, prepared.launch, prepared.context)
        self._stub = self.step.stub
        self._metadata = step_metadata(prepared.launch.token, prepared.launch.traceparent)
        self._errors = errors

    async def upload(
        self, name: str, path: os.PathLike[str], suffix: str, declared: workflow_pb2.Artifact | None = None
    ) -> artifacts_pb2.ArtifactInfo:
        """Upload to the workflow's repository, at the key format's key or a declared ``s3: {key: ...}``."""
        header = step_io.output_header(self.step, declared or workflow_pb2.Artifact(name=name), suffix)
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
            info = await self.upload(artifact.name, packed.path, packed.suffix, artifact)
        except (TreadleError, OSError) as exc:
            self._errors.append(f"output artifact {artifact.name!r}: {exc}")
            return None
        return workflow_pb2.Artifact(name=artifact.name, stored=step_io.stored_artifact(info, packed.archive))

    async def main_log(self) -> workflow_pb2.StoredArtifact | artifacts_pb2.PutArtifactRequest | None:
        """The stored log; or, when it is small, the log itself, for OutputService to store with the report."""
        path = self._prepared.layout.log_file
        try:
            with FileIO(path, "rb") as f:
                inline = read_small(f, INLINE_LOG_BYTES)
            if inline is not None:
                header = step_io.output_header(self.step, workflow_pb2.Artifact(name=LOG_ARTIFACT_NAME), LOG_SUFFIX)
                return put_request(header, inline)
            info = await self.upload(LOG_ARTIFACT_NAME, path, LOG_SUFFIX)
        except (TreadleError, OSError) as exc:
            self._errors.append(f"saving the log failed: {exc}")
            return None
        return step_io.stored_artifact(info, "none")


async def _spill_large_values(
    uploader: _Uploader, prepared: PreparedStep, outputs: workflow_pb2.Outputs, errors: list[str]
) -> None:
    """Store values longer than the inline limit as blobs, reported by reference (services/artifacts/values.py)."""
    try:
        await values.spill_large_values(
            uploader.step.stub,
            outputs,
            workflow=prepared.launch.workflow,
            pod_name=prepared.context.pod_name,
            repository=prepared.context.artifact_repository,
            timeout_for=transfer_timeout,
            metadata=uploader.step.metadata,
        )
    except (TreadleError, OSError) as exc:
        errors.append(f"saving the large result or parameter values failed: {exc}")
        # The step fails; what could not be stored is left out rather than sent inline.
        if outputs.HasField("result") and len(outputs.result.encode()) > values.INLINE_VALUE_BYTES:
            outputs.ClearField("result")
        for parameter in outputs.parameters:
            if parameter.HasField("value") and len(parameter.value.encode()) > values.INLINE_VALUE_BYTES:
                parameter.ClearField("value")


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
    outputs = workflow_pb2.Outputs(
        parameters=parameters,
        artifacts=[artifact for artifact in saved if artifact is not None],
        exit_code=str(result.exit_code),
    )
    if len(result.stdout) > values.MAX_VALUE_BYTES:
        errors.append(
            f"the result (stdout) is longer than {values.MAX_VALUE_BYTES} bytes, the most a result may hold; "
            "write large data to a file and declare it as an output artifact"
        )
    else:
        outputs.result = trim_one_newline(result.stdout.decode("utf-8", errors="replace"))
    await _spill_large_values(uploader, prepared, outputs, errors)
    phase, message = outcome(prepared, result, errors)
    launch = prepared.launch
    report = outputs_pb2.ReportStepOutputsRequest(
        workflow=launch.workflow,
        node_id=launch.node_id,
        attempt=launch.attempt,
        phase=phase,
        message=message,
        outputs=outputs,
    )
    if isinstance(log_artifact, artifacts_pb2.PutArtifactRequest):
        report.log_upload.CopyFrom(log_artifact)
    elif log_artifact is not None:
        report.log.CopyFrom(log_artifact)
    return report
