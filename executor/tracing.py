"""The executor's spans: one step attempt's phases, under the node span the scheduler named in TRACEPARENT.

    node <step>                       (emitted by the scheduler when the node finishes)
    ├─ executor.init
    │  └─ artifact.download <name>    one per stored input artifact, with its size
    ├─ executor.main                  process.exit.code
    ├─ executor.wait
    │  ├─ parameter <name>            one per output parameter read from a file
    │  └─ artifact.upload <name>      one per output artifact, and main-logs over 64 KiB
    └─ outputs.report                 (a smaller log goes with the report; OutputService stores it)

Every gRPC call made inside a span carries it as its traceparent (the channel's
interceptor), so the services' server spans nest under these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from treadle.executor.launch import StepLaunch
from treadle.telemetry import names
from treadle.telemetry.context import attached, context_with_parent, parse_traceparent

TRACER_NAME = "treadle.executor"
# Made once: the SDK builds a new tracer on every get_tracer call (a proxy until telemetry is configured).
_tracer = trace.get_tracer(TRACER_NAME)


@contextmanager
def in_node_span(launch: StepLaunch) -> Iterator[None]:
    """Make the node's span (from the launch's traceparent) the current parent for the block."""
    parent = parse_traceparent(launch.traceparent)
    if parent is None:
        yield
        return
    with attached(context_with_parent(parent)):
        yield


@contextmanager
def step_span(name: str, launch: StepLaunch, **attributes: str | int) -> Iterator[Span]:
    """A span of this attempt, current for the block; an exception escaping it marks it failed.

    Only the attempt is recorded here: the node's span (the parent) names the workflow and node.
    """
    span = _tracer.start_span(name, attributes={names.ATTEMPT: launch.attempt, **attributes})
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        otel_context.detach(token)
        span.end()
