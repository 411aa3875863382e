"""One step attempt from start to report: init, main, wait, then ReportStepOutputs.

Whatever goes wrong, the attempt ends with a report (phase ERROR and a message
naming what failed) or, when even that is impossible, an outcome that says why
nothing was reported. It never hangs: every call has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.trace import Status, StatusCode

from treadle.errors import TreadleError
from treadle.executor.init import run_init
from treadle.executor.launch import StepLaunch
from treadle.executor.layout import StepLayout
from treadle.executor.live_log import LiveLogSender
from treadle.executor.main import run_main
from treadle.executor.rpc import ServiceChannels, describe_rpc_error, step_metadata
from treadle.executor.sandbox import SandboxMode
from treadle.executor.spawner import Spawner
from treadle.executor.tracing import in_node_span, step_span
from treadle.executor.wait import run_wait
from treadle.grpcutil.channels import DEFAULT_TIMEOUT
from treadle.outputs.v1 import outputs_pb2
from treadle.telemetry import names
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

# Pauses between the tries of a report that met UNAVAILABLE (a service restarting).
REPORT_RETRY_PAUSES = (0.2, 0.5)


@dataclass(frozen=True)
class StepOutcome:
    """How an attempt ended, as far as the runtime needs to know."""

    # True when OutputService accepted the report.
    reported: bool
    # Why nothing was reported (empty when reported).
    message: str = ""
    # The phase that was (or would have been) reported.
    phase: workflow_pb2.NodePhase.ValueType = workflow_pb2.NODE_PHASE_UNSPECIFIED


def error_report(launch: StepLaunch, message: str) -> outputs_pb2.ReportStepOutputsRequest:
    return outputs_pb2.ReportStepOutputsRequest(
        workflow=launch.workflow,
        node_id=launch.node_id,
        attempt=launch.attempt,
        phase=workflow_pb2.NODE_PHASE_ERROR,
        message=message,
    )


class _PhaseClock:
    """Milliseconds per phase, for the step's log line."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._laps: list[str] = []

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self._laps.append(f"{phase} {(now - self._last) * 1000:.1f} ms")
        self._last = now

    def __str__(self) -> str:
        return ", ".join(self._laps)


class StepRunner:
    """Runs step attempts; one per executor process, shared by every step it runs."""

    def __init__(self, channels: ServiceChannels, spawner: Spawner, steps_dir: Path, mode: SandboxMode) -> None:
        self._channels = channels
        self._spawner = spawner
        self._steps_dir = steps_dir
        self._mode = mode

    async def run(self, launch: StepLaunch) -> StepOutcome:
        loop = asyncio.get_running_loop()
        deadline_at = None if launch.deadline_seconds is None else loop.time() + launch.deadline_seconds
        layout = StepLayout.for_step(
            self._steps_dir, launch.workflow, launch.node_id, launch.attempt, isolated=self._mode.isolated
        )
        clock = _PhaseClock()
        try:
            with in_node_span(launch):
                report = await self._produce_report(launch, layout, deadline_at, clock)
                with step_span(names.SPAN_REPORT, launch, **{names.PHASE: workflow_pb2.NodePhase.Name(report.phase)}):
                    outcome = await self._send(launch, report)
            clock.lap("report")
        finally:
            await loop.run_in_executor(None, layout.remove)
        level = logging.DEBUG if outcome.reported else logging.WARNING
        phase = workflow_pb2.NodePhase.Name(outcome.phase)
        log.log(level, "step %s: %s, %s (%s)", launch.describe(), phase, outcome.message or "reported", clock)
        return outcome

    async def _produce_report(
        self, launch: StepLaunch, layout: StepLayout, deadline_at: float | None, clock: _PhaseClock
    ) -> outputs_pb2.ReportStepOutputsRequest:
        try:
            layout.create()
            with step_span(names.SPAN_INIT, launch):
                prepared = await run_init(self._channels, launch, layout)
            clock.lap("init")
            with step_span(names.SPAN_MAIN, launch) as span:
                live_log = LiveLogSender(self._channels.outputs(launch.outputs), launch)
                result = await run_main(
                    prepared, self._spawner, mode=self._mode, deadline_at=deadline_at, live_log=live_log
                )
                span.set_attribute(names.PROCESS_EXIT_CODE, result.exit_code)
                if result.exit_code != 0:
                    span.set_status(Status(StatusCode.ERROR, f"exit code {result.exit_code}"))
            clock.lap("main")
            with step_span(names.SPAN_WAIT, launch):
                report = await run_wait(self._channels, prepared, result)
            clock.lap("wait")
            return report
        except (TreadleError, OSError) as exc:
            return error_report(launch, str(exc))
        except Exception as exc:  # a bug in the executor: still report it rather than leave the step hanging
            log.exception("step %s: unexpected executor error", launch.describe())
            return error_report(launch, f"executor error: {exc!r}")

    async def _send(self, launch: StepLaunch, report: outputs_pb2.ReportStepOutputsRequest) -> StepOutcome:
        return await send_report(self._channels, launch, report)


async def send_report(
    channels: ServiceChannels, launch: StepLaunch, report: outputs_pb2.ReportStepOutputsRequest
) -> StepOutcome:
    """ReportStepOutputs, tried again while OutputService is UNAVAILABLE (restarting)."""
    stub = channels.outputs(launch.outputs)
    metadata = step_metadata(launch.token, launch.traceparent)
    for pause in (*REPORT_RETRY_PAUSES, None):
        try:
            await stub.ReportStepOutputs(report, timeout=DEFAULT_TIMEOUT, metadata=metadata)
            return StepOutcome(reported=True, phase=report.phase)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE and pause is not None:
                await asyncio.sleep(pause)
                continue
            problem = describe_rpc_error("ReportStepOutputs", exc)
            message = f"{report.message}; {problem}" if report.phase == workflow_pb2.NODE_PHASE_ERROR else problem
            return StepOutcome(reported=False, message=message, phase=report.phase)
    raise AssertionError("unreachable")
