"""Spans whose start, end or ids are not the moment's: emitted after the fact, from stored timings."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from treadle.telemetry.context import context_with_parent
from treadle.telemetry.ids import preset_ids
from treadle.telemetry.providers import tracing_enabled

TRACER_NAME = "treadle"
# Made once: the SDK builds a new tracer on every get_tracer call (a proxy until telemetry is configured).
_tracer = trace.get_tracer(TRACER_NAME)


def nanos(unix_seconds: float) -> int:
    return int(unix_seconds * 1e9)


def emit_span(
    name: str,
    *,
    trace_id: int,
    span_id: int,
    parent: SpanContext | None,
    start: float,
    end: float,
    attributes: Attributes = None,
    links: Sequence[Link] = (),
    error: str | None = None,
) -> None:
    """Record a finished span with the given ids and Unix times (seconds). A no-op while tracing is off."""
    if not tracing_enabled():
        return
    with preset_ids(trace_id, span_id):
        span = _tracer.start_span(
            name, context=context_with_parent(parent), attributes=attributes, links=links, start_time=nanos(start)
        )
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=nanos(max(start, end)))


def start_span_at(
    name: str,
    parent: SpanContext | None,
    start: float,
    attributes: Attributes = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Span:
    """A span under parent that started at start (Unix seconds); the caller ends it."""
    return _tracer.start_span(
        name, context=context_with_parent(parent), kind=kind, attributes=attributes, start_time=nanos(start)
    )
