"""W3C trace context in and out of strings: gRPC metadata, TRACEPARENT, stored ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# The environment variable through which every runtime hands an executor its node's span.
TRACEPARENT_ENV = "TRACEPARENT"

_propagator = TraceContextTextMapPropagator()


def format_traceparent(span_context: SpanContext) -> str:
    """ "00-<trace id>-<span id>-<flags>", or "" for an invalid context."""
    if not span_context.is_valid:
        return ""
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def remote_span_context(trace_id: int, span_id: int, *, sampled: bool = True) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)


def parse_traceparent(traceparent: str, tracestate: str = "") -> SpanContext | None:
    """The span context a traceparent names; None when it is empty or malformed."""
    if not traceparent:
        return None
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    span_context = trace.get_current_span(_propagator.extract(carrier)).get_span_context()
    return span_context if span_context.is_valid else None


def context_with_parent(parent: SpanContext | None, base: Context | None = None) -> Context:
    """A context whose current span is parent (or none: then spans started in it are roots)."""
    if parent is None:
        return Context() if base is None else trace.set_span_in_context(trace.INVALID_SPAN, base)
    return trace.set_span_in_context(NonRecordingSpan(parent), base)


def context_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context | None:
    """The caller's context from gRPC invocation metadata; None when it sent none."""
    traceparent = tracestate = ""
    for key, value in metadata or ():
        if key == TRACEPARENT:
            traceparent = value.decode() if isinstance(value, bytes) else value
        elif key == TRACESTATE:
            tracestate = value.decode() if isinstance(value, bytes) else value
    parent = parse_traceparent(traceparent, tracestate)
    return None if parent is None else context_with_parent(parent)


def current_traceparent() -> str:
    return format_traceparent(trace.get_current_span().get_span_context())


@contextmanager
def attached(ctx: Context) -> Iterator[None]:
    """Make ctx the current context for the block (and for tasks created in it)."""
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)
