"""Pieces of WatchWorkflow: the resume point, and ending long streams when the server drains."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from treadle.errors import FieldViolation, InvalidSpec, Unavailable
from treadle.workflow.v1 import workflow_pb2

# "Send everything, starting with the current state."
FROM_THE_START = -1

Event = TypeVar("Event")


def resume_after(resource_version: str) -> int:
    """The version a watch resumes after; raises InvalidSpec for anything but a decimal version."""
    text = resource_version.strip()
    if not text:
        return FROM_THE_START
    if not text.isascii() or not text.isdigit():
        raise InvalidSpec(
            FieldViolation("resource_version", f"expected metadata.resource_version of an event, got {text!r}")
        )
    return int(text)


def resume_hint(workflow: workflow_pb2.Workflow) -> str:
    return f"resume with resource_version={workflow.metadata.resource_version}"


async def until_closed(
    events: AsyncIterator[Event], closed: asyncio.Event, hint: Callable[[Event], str] | None = None
) -> AsyncIterator[Event]:
    """Pass events (never None) on until closed is set; then end with Unavailable.

    Watches and followed logs may last as long as their workflow runs, so a
    draining server ends them instead of waiting: the client reconnects (to this
    server once restarted, or to another replica). hint(last event) says where
    to resume.
    """
    last: Event | None = None
    closing = asyncio.create_task(closed.wait())
    following: asyncio.Task[Event | None] | None = None
    try:
        while True:
            following = asyncio.create_task(_next(events))
            await asyncio.wait((following, closing), return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                where = f"; {hint(last)}" if hint is not None and last is not None else ""
                raise Unavailable(f"the server is shutting down{where}")
            event = following.result()
            following = None
            if event is None:
                return
            last = event
            yield event
    finally:
        closing.cancel()
        if following is not None and not following.done():
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        await _aclose(events)


async def _next(events: AsyncIterator[Event]) -> Event | None:
    """The next event, or None at the end (a task cannot carry StopAsyncIteration out)."""
    return await anext(events, None)


async def _aclose(events: AsyncIterator[Event]) -> None:
    """Finish the source generator now rather than whenever it is collected."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
