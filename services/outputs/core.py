"""The OutputService core: check, record, forward. No grpc here; the scheduler sits behind StepCompleter."""

from __future__ import annotations

import logging
from typing import Protocol

from treadle.auth import StepTokens
from treadle.errors import FieldViolation, InvalidSpec, NotFound, TreadleError, Unavailable
from treadle.outputs.v1.outputs_pb2 import ReportStepOutputsRequest
from treadle.services.outputs.log_store import INLINE_LOG_BYTES, LogStore, NoLogStore, store_inline_log
from treadle.services.outputs.repository import LATEST_ATTEMPT, OutputRepository
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

FINAL_NODE_PHASES = (
    workflow_pb2.NODE_PHASE_SUCCEEDED,
    workflow_pb2.NODE_PHASE_FAILED,
    workflow_pb2.NODE_PHASE_ERROR,
)
# The scheduler's own verdicts on a report: retrying the forward cannot change them.
_PERMANENT_FORWARD_ERRORS = (NotFound, InvalidSpec)


class StepCompleter(Protocol):
    """Tells the scheduler that a step attempt finished (SchedulerService.CompleteStep)."""

    async def complete_step(self, report: ReportStepOutputsRequest) -> bool:
        """True when the scheduler accepted the outcome; False when it had it already."""
        ...


class NoScheduler:
    """The completer used until the app knows the scheduler's address."""

    async def complete_step(self, report: ReportStepOutputsRequest) -> bool:
        raise Unavailable("no scheduler address is configured")


class Outputs:
    def __init__(self, repository: OutputRepository, tokens: StepTokens) -> None:
        self.repository = repository
        self.tokens = tokens
        self.scheduler: StepCompleter = NoScheduler()
        self.logs: LogStore = NoLogStore()

    async def report(self, report: ReportStepOutputsRequest, token: str | None) -> bool:
        """Record a step attempt's report and pass it on; True when this call recorded it.

        A repeated identical report is forwarded again, so an executor whose
        first forward failed can retry; CompleteStep is idempotent. A log sent
        with the report (`log_upload`) is stored first, and the report recorded
        with `log` naming it (report is changed in place).
        """
        self.tokens.check(token, report.workflow, report.node_id, report.attempt)
        validate_report(report)
        if report.HasField("log_upload"):
            await store_inline_log(report, token, self.logs)
        # The record (and, co-hosted, the scheduler's save) share one fsync with concurrent reports;
        # nothing is acknowledged before it.
        group = self.repository.group
        with group.deferring():
            recorded = self.repository.record(report)
            try:
                accepted = await self.scheduler.complete_step(report)
            except _PERMANENT_FORWARD_ERRORS:
                raise
            except TreadleError as exc:
                raise Unavailable(
                    f"report of {report.workflow}/{report.node_id} attempt {report.attempt} is recorded, "
                    f"but the scheduler could not be told: {exc}"
                ) from exc
        await group.sync()
        if not accepted:
            log.debug("scheduler already had %s/%s attempt %d", report.workflow, report.node_id, report.attempt)
        return recorded

    def get(self, workflow: str, node_id: str, attempt: int) -> ReportStepOutputsRequest:
        violations = _identity_violations(workflow, node_id)
        if attempt < LATEST_ATTEMPT:
            violations.append(FieldViolation("attempt", "must be -1 (the latest) or a non-negative attempt number"))
        if violations:
            raise InvalidSpec(violations)
        return self.repository.get(workflow, node_id, attempt)

    def delete_workflow(self, workflow: str) -> int:
        if not workflow:
            raise InvalidSpec(FieldViolation("workflow", "workflow name is required"))
        return self.repository.delete_workflow(workflow)


def validate_report(report: ReportStepOutputsRequest) -> None:
    violations = _identity_violations(report.workflow, report.node_id)
    if report.attempt < 0:
        violations.append(FieldViolation("attempt", "must not be negative"))
    if report.phase not in FINAL_NODE_PHASES:
        violations.append(
            FieldViolation("phase", "must be NODE_PHASE_SUCCEEDED, NODE_PHASE_FAILED or NODE_PHASE_ERROR")
        )
    outputs = report.outputs
    if outputs.HasField("exit_code") and not _is_integer(outputs.exit_code):
        violations.append(FieldViolation("outputs.exit_code", f"{outputs.exit_code!r} is not an integer"))
    for i, param in enumerate(outputs.parameters):
        if not param.name:
            violations.append(FieldViolation(f"outputs.parameters[{i}].name", "name is required"))
    for i, artifact in enumerate(outputs.artifacts):
        if not artifact.name:
            violations.append(FieldViolation(f"outputs.artifacts[{i}].name", "name is required"))
    if report.HasField("log_upload"):
        if report.HasField("log"):
            violations.append(FieldViolation("log_upload", "set either log or log_upload, not both"))
        if len(report.log_upload.data) > INLINE_LOG_BYTES:
            violations.append(
                FieldViolation(
                    "log_upload.data",
                    f"holds {len(report.log_upload.data)} bytes; a report carries at most {INLINE_LOG_BYTES} "
                    "(store a larger log with ArtifactService and set log)",
                )
            )
    if violations:
        raise InvalidSpec(violations)


def _identity_violations(workflow: str, node_id: str) -> list[FieldViolation]:
    violations = []
    if not workflow:
        violations.append(FieldViolation("workflow", "workflow name is required"))
    if not node_id:
        violations.append(FieldViolation("node_id", "node id is required"))
    return violations


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
