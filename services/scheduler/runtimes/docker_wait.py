"""Waiting for main: its exit code, a deadline, OOMKilled, and an engine that restarts meanwhile.

Every wait on the engine has a deadline: the step's own, else WAIT_SLICE_SECONDS,
after which the wait is simply issued again. An engine that stops answering
(restarting) is waited for, up to ENGINE_RETURN_SECONDS; a container it stopped
on the way down then ends the step with phase Error and a message saying so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from treadle.executor.capture import RESULT_LIMIT_BYTES
from treadle.executor.main import MainResult
from treadle.outputs.v1 import outputs_pb2
from treadle.services.scheduler.runtimes.docker_engine import (
    API_TIMEOUT_SECONDS,
    ContainerState,
    DockerEngine,
    EngineError,
    EngineTimeout,
    EngineUnreachable,
    NoSuchObject,
)
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

SIGKILL_EXIT_CODE = 137
OOM_FLAG_CHECKS = 20  # up to 2 s: on a loaded machine the event came after 0.5 s
OOM_FLAG_INTERVAL_SECONDS = 0.1

# A wait without a deadline is re-issued this often, so that no call to the engine is unbounded.
WAIT_SLICE_SECONDS = 300.0
# How long a step waits for an engine that went away (restarting) before giving up on it.
ENGINE_RETURN_SECONDS = 60.0
Phase = workflow_pb2.NodePhase


@dataclass(frozen=True)
class MainEnd:
    """How main ended, beyond its exit code."""

    result: MainResult
    state: ContainerState | None
    # The engine went away (and came back) while main ran.
    engine_restarted: bool = False


class MainWaiter:
    def __init__(self, engine: DockerEngine, step: str, stop_grace_seconds: float) -> None:
        self._engine = engine
        self._step = step
        self._grace = stop_grace_seconds

    async def wait(self, main_id: str, deadline_at: float | None) -> MainEnd:
        """Wait for main to exit; past deadline_at (event-loop time) stop it (SIGTERM, SIGKILL after the grace)."""
        loop = asyncio.get_running_loop()
        restarted = deadline_exceeded = False
        code: int | None = None
        while code is None:
            timeout = WAIT_SLICE_SECONDS
            if deadline_at is not None and not deadline_exceeded:
                remaining = deadline_at - loop.time()
                if remaining <= 0:
                    deadline_exceeded = True
                    await self._engine.stop(main_id, self._grace)
                    timeout = API_TIMEOUT_SECONDS  # stopped: the wait returns at once
                else:
                    timeout = min(WAIT_SLICE_SECONDS, remaining)
            try:
                code = await self._engine.wait(main_id, timeout=timeout)
            except EngineTimeout:
                if deadline_exceeded:
                    raise EngineError("main did not stop after its deadline") from None
            except EngineUnreachable:
                restarted = True
                await self._engine_back()
            except NoSuchObject:
                what = "after the Docker engine restarted" if restarted else "while it ran"
                raise EngineError(f"main's container disappeared {what}") from None
        try:
            state, stdout = await self._final_state(main_id)
        except EngineUnreachable:  # main was stopped by an engine shutting down, which then stopped answering
            restarted = True
            await self._engine_back()
            state, stdout = await self._final_state(main_id)
        result = MainResult(returncode=code, stdout=stdout[-RESULT_LIMIT_BYTES:], deadline_exceeded=deadline_exceeded)
        return MainEnd(result=result, state=state, engine_restarted=restarted)

    async def _final_state(self, main_id: str) -> tuple[ContainerState, bytes]:
        state, stdout = await asyncio.gather(
            self._engine.state(main_id), self._engine.logs(main_id, stdout=True, stderr=False)
        )
        # The engine records an OOM kill from a cgroup event that can land just after the exit:
        # a SIGKILLed main without the flag gets a short second look before we name the cause.
        for _ in range(OOM_FLAG_CHECKS):
            if state.oom_killed or state.exit_code != SIGKILL_EXIT_CODE:
                break
            await asyncio.sleep(OOM_FLAG_INTERVAL_SECONDS)
            state = await self._engine.state(main_id)
        return state, stdout

    async def _engine_back(self) -> None:
        """Wait for an engine that stopped answering (restarting); EngineError if it does not come back."""
        log.warning("step %s: the Docker engine went away; waiting for it", self._step)
        if not await self._engine.wait_until_reachable(ENGINE_RETURN_SECONDS):
            raise EngineError(
                f"the Docker engine at {self._engine.address} went away while the step ran "
                f"and did not come back within {ENGINE_RETURN_SECONDS:g} seconds"
            )


def memory_limit(template: workflow_pb2.Template) -> str:
    spec = template.script if template.HasField("script") else template.container
    return spec.resources.limits.get("memory", "")


def explain(report: outputs_pb2.ReportStepOutputsRequest, end: MainEnd, limit: str) -> None:
    """Name the cause of a failure the exit code alone does not tell: OOMKilled, an engine restart."""
    code = end.result.exit_code
    if end.state is not None and end.state.oom_killed:
        detail = f" ({limit})" if limit else ""
        report.phase = Phase.NODE_PHASE_FAILED
        report.message = f"OOMKilled (exit code {code}): main used more than its memory limit{detail}"
    elif end.engine_restarted and code != 0 and not end.result.deadline_exceeded:
        report.phase = Phase.NODE_PHASE_ERROR
        report.message = f"the Docker engine restarted while the step ran; main was stopped (exit code {code})"
