"""Trace and span ids that several processes, at several times, must agree on.

A workflow outlives the processes that work on it, so its spans are made by
admission, the scheduler (perhaps several, one after another) and many
executors. None of them can hold a span object from start to end. Instead:

- The **trace id** is chosen when the workflow is submitted. Its top 48 bits
  are the submission time in Unix milliseconds (as in UUIDv7), the other 80
  bits random. The scheduler stores it with the workflow.
- The **root span id** is the low 64 bits of the trace id. Anyone who knows
  the trace id can address the root span, before it is emitted.
- A **node span id** is a hash of the trace id and the node id, so the
  executor's spans can name their node's span as parent long before the
  scheduler emits it, in whichever scheduler process sees the node finish.

Spans that must carry such an id are emitted inside `preset_ids`; the tracer
provider's id generator (providers.PresetIdGenerator) then hands the SDK the
chosen ids instead of random ones.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_TIME_BITS = 48
_RANDOM_BITS = 128 - _TIME_BITS
_SPAN_MASK = (1 << 64) - 1
# A trace id's embedded time is trusted only this close to the time it is compared with.
PLAUSIBLE_SKEW_SECONDS = 300.0

_preset: ContextVar[tuple[int, int] | None] = ContextVar("treadle_preset_span_ids", default=None)


def new_workflow_trace_id(now: float | None = None) -> int:
    """A trace id whose top 48 bits are now (Unix ms) and whose low 80 bits are random."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << _TIME_BITS) - 1)
    while True:
        trace_id = (millis << _RANDOM_BITS) | random.getrandbits(_RANDOM_BITS)
        if trace_id & _SPAN_MASK:  # the root span id must not be 0
            return trace_id


def trace_start_time(trace_id: int, near: float) -> float | None:
    """The submission time embedded in a workflow trace id, when it is plausible next to near (Unix s)."""
    embedded = (trace_id >> _RANDOM_BITS) / 1000.0
    return embedded if abs(embedded - near) <= PLAUSIBLE_SKEW_SECONDS else None


def root_span_id(trace_id: int) -> int:
    return (trace_id & _SPAN_MASK) or 1


def node_span_id(trace_id: int, node_id: str) -> int:
    digest = hashlib.blake2b(f"{trace_id:032x}/{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


def preset() -> tuple[int, int] | None:
    """The (trace id, span id) that `preset_ids` chose for the span being started, if any."""
    return _preset.get()


@contextmanager
def preset_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """Within this block, the next span started gets trace_id (if it is a root) and span_id."""
    token = _preset.set((trace_id, span_id))
    try:
        yield
    finally:
        _preset.reset(token)
