"""Where OutputService stores a log that came with a report (`ReportStepOutputsRequest.log_upload`).

The store is ArtifactService.PutArtifact (artifacts_client.GrpcLogStore), called
with the reporting step's own token, so ArtifactService checks it exactly as if
the executor had called PutArtifact itself. No grpc here: the core imports this.
"""

from __future__ import annotations

from typing import Protocol

from opentelemetry import trace

from treadle.artifacts.v1 import artifacts_pb2
from treadle.errors import TreadleError, Unavailable
from treadle.outputs.v1.outputs_pb2 import ReportStepOutputsRequest
from treadle.telemetry import names
from treadle.workflow.v1 import workflow_pb2

# The most log data a report may carry; the executor stores a larger log through ArtifactService itself.
INLINE_LOG_BYTES = 64 * 1024
_tracer = trace.get_tracer("treadle.outputs")


class LogStore(Protocol):
    async def put(self, request: artifacts_pb2.PutArtifactRequest, token: str | None) -> artifacts_pb2.ArtifactInfo:
        """Store the object; raises the TreadleError ArtifactService answered."""
        ...


class NoLogStore:
    """The store used until the app knows ArtifactService's address."""

    async def put(self, request: artifacts_pb2.PutArtifactRequest, token: str | None) -> artifacts_pb2.ArtifactInfo:
        raise Unavailable("no artifact service address is configured")


async def store_inline_log(report: ReportStepOutputsRequest, token: str | None, store: LogStore) -> None:
    """Store the report's `log_upload` and point `log` at it (report is changed in place).

    Unavailable is raised, so that the executor sends the report again. Any other failure is the
    step's, as when the executor stores its log itself: a step that succeeded becomes ERROR, and
    the report is recorded without a log.
    """
    upload = report.log_upload
    name = upload.header.artifact_name
    attributes: dict[str, str | int] = {names.ARTIFACT_NAME: name, names.ARTIFACT_BYTES: len(upload.data)}
    with _tracer.start_as_current_span(f"{names.SPAN_UPLOAD} {name}", attributes=attributes) as span:
        try:
            info = await store.put(upload, token)
        except Unavailable:
            raise
        except TreadleError as exc:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            report.ClearField("log_upload")
            _log_failed(report, f"saving the log failed: {exc}")
            return
        span.set_attribute(names.ARTIFACT_KEY, info.key)
    report.ClearField("log_upload")
    log = report.log
    log.key, log.size_bytes, log.sha256 = info.key, info.size_bytes, info.sha256
    log.archive, log.repository = "none", info.repository


def _log_failed(report: ReportStepOutputsRequest, problem: str) -> None:
    """As the executor's verdict: the command's failure first, then the executor's problems."""
    if report.phase == workflow_pb2.NODE_PHASE_SUCCEEDED:
        report.phase = workflow_pb2.NODE_PHASE_ERROR
        report.message = problem
    elif report.phase == workflow_pb2.NODE_PHASE_ERROR:
        report.message = f"{report.message}; {problem}" if report.message else problem
