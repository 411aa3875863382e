"""Blocking file calls in worker threads, safe to cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def blocking(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """asyncio.to_thread, except that a cancelled caller still waits for the call to return.

    A thread cannot be stopped. If the caller closed a file while its read or
    write still ran in the thread, the descriptor number could be reused by
    another open() and the late call would hit an unrelated file.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
