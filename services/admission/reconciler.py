"""Hands off stored workflows the scheduler has not taken yet, until it takes them.

This is what lets a submit succeed while the scheduler is down, and what
makes a workflow stored before a restart run after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from treadle.services.admission.core import Admission

log = logging.getLogger(__name__)


class HandOffReconciler:
    def __init__(
        self,
        admission: Admission,
        *,
        min_delay: float = 0.2,
        max_delay: float = 10.0,
        idle_interval: float = 30.0,
    ) -> None:
        self._admission = admission
        self._min_delay = min_delay
        self._max_delay = max_delay
        # With nothing pending, look again this often anyway (a safety net, not the main trigger).
        self._idle_interval = idle_interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="admission-hand-off-reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            # grpc.aio may turn the cancellation of a call in flight into a CANCELLED error,
            # which the pass handles like any failed hand-off; the flag ends the loop regardless.
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        wake = self._admission.hand_off_needed
        delay = self._min_delay
        while not self._stopping:
            wake.clear()
            try:
                done = await self._admission.hand_off_pending()
            except Exception:
                log.exception("hand-off pass failed")
                done = False
            if done:
                delay = self._min_delay
                await _wait(wake, self._idle_interval)
            else:
                # Retrying sooner than the backoff would only hammer a scheduler that is down.
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
