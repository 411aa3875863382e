"""Streaming a running step's log to OutputService, so that `treadle logs -f` shows its lines as they come.

Most steps are over in milliseconds; their log is read from the stored
artifact a moment later, and streaming it would only cost them a call. So a
step's log is streamed only once the step has run for STREAM_AFTER_SECONDS:
what it wrote so far goes first, then each chunk as the capture writes it.

Streaming never fails the step. If the call breaks, or the service falls
behind by more than MAX_BUFFERED_BYTES, streaming stops; OutputService then
ends the live log, and followers finish the step from the stored log (which
has every line: it is written from the same chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING

import grpc

from treadle.executor.launch import StepLaunch
from treadle.executor.rpc import step_metadata
from treadle.outputs.v1 import outputs_pb2

if TYPE_CHECKING:
    from treadle.outputs.v1.outputs_pb2_grpc import OutputServiceAsyncStub

log = logging.getLogger(__name__)

STREAM_AFTER_SECONDS = 0.25
MAX_BUFFERED_BYTES = 4 * 1024 * 1024
# The call's deadline: the step's own deadline plus this, or LONGEST_STREAM_SECONDS for a step without one.
DEADLINE_MARGIN_SECONDS = 60.0
LONGEST_STREAM_SECONDS = 24 * 3600.0
# How long finish() waits for the last chunks to be taken.
FINISH_TIMEOUT_SECONDS = 5.0


class LiveLogSender:
    def __init__(self, stub: OutputServiceAsyncStub, launch: StepLaunch) -> None:
        self._stub = stub
        self._launch = launch
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._wakeup = asyncio.Event()
        self._ended = False
        self._given_up = False
        self._task: asyncio.Task[None] | None = None
        self._streaming = False

    def start(self) -> None:
        """Begin: stream from STREAM_AFTER_SECONDS on, if the step still runs then."""
        self._task = asyncio.get_running_loop().create_task(self._stream(), name=f"live log {self._launch.describe()}")

    def write(self, data: bytes) -> None:
        """A chunk the step wrote (called by the capture, in order)."""
        if self._given_up or self._ended:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered > MAX_BUFFERED_BYTES:
            self._give_up("the step writes faster than its log can be streamed")
        self._wakeup.set()

    async def finish(self) -> None:
        """The command exited: send what is left (if streaming), then end the call."""
        self._ended = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done() and not self._streaming:
            task.cancel()  # still waiting for STREAM_AFTER_SECONDS: this step is not streamed
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, FINISH_TIMEOUT_SECONDS)

    def abort(self) -> None:
        """The step was cancelled: stop at once (the call is cancelled with the task)."""
        self._ended = True
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _give_up(self, why: str) -> None:
        self._given_up = True
        self._buffer.clear()
        self._buffered = 0
        log.debug("step %s: live log stopped: %s", self._launch.describe(), why)

    async def _stream(self) -> None:
        await asyncio.sleep(STREAM_AFTER_SECONDS)
        if self._ended or self._given_up:
            return
        self._streaming = True
        launch = self._launch
        limit = launch.deadline_seconds + DEADLINE_MARGIN_SECONDS if launch.deadline_seconds else LONGEST_STREAM_SECONDS
        call = self._stub.StreamStepLog(timeout=limit, metadata=step_metadata(launch.token, launch.traceparent))
        try:
            header = outputs_pb2.StepLogHeader(workflow=launch.workflow, node_id=launch.node_id, attempt=launch.attempt)
            await call.write(outputs_pb2.StreamStepLogRequest(header=header))
            while not self._given_up:
                while self._buffer:
                    chunk = self._buffer.popleft()
                    self._buffered -= len(chunk)
                    await call.write(outputs_pb2.StreamStepLogRequest(chunk=chunk))
                if self._ended:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._given_up:
                call.cancel()
                return
            await call.done_writing()
            await call
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            self._give_up(f"StreamStepLog failed: {exc}")
        except asyncio.CancelledError:
            call.cancel()
            raise
