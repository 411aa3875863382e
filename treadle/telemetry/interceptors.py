"""gRPC interceptors: W3C context across every hop, a server span and a duration metric per RPC.

- `ServerTelemetry` (installed by `treadle.grpcutil.server.create_server` on every
  server) reads `traceparent` from the call's metadata, starts a SERVER span named
  `<package.Service>/<Method>` with the rpc.* attributes under it, makes it current
  for the handler, and records `rpc.server.call.duration`.
- `client_propagation()` (installed by `treadle.grpcutil.channels.open_channel` on every
  channel) writes the current span's context into the outgoing metadata, replacing
  any `traceparent` the caller set itself. It records no client span: the caller's
  own span (`executor.init`, `outputs.report`, ...) already says what the call was for.

Calls that start a workflow (`WORKFLOW_ROOT_METHODS`) are special: their server span
is parented under a fresh workflow root (`treadle.telemetry.ids`), so the whole
workflow, its submission included, is one trace whose root the scheduler emits when
the workflow ends. A caller's own trace is linked from that span, not continued.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from treadle.telemetry import names
from treadle.telemetry.context import (
    TRACEPARENT,
    TRACESTATE,
    attached,
    context_from_metadata,
    context_with_parent,
    current_traceparent,
    remote_span_context,
)
from treadle.telemetry.ids import new_workflow_trace_id, root_span_id

WORKFLOW_ROOT_METHODS = frozenset(
    {
        "/treadle.admission.v1.AdmissionService/SubmitWorkflow",
        "/treadle.admission.v1.AdmissionService/ResubmitWorkflow",
    }
)
# Probes and tooling: neither traced nor measured.
UNOBSERVED_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)

Behavior = Callable[..., Any]
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def _split_method(method: str) -> tuple[str, str]:
    """ "/pkg.Service/Method" -> ("pkg.Service", "Method")."""
    service, _, name = method.strip("/").rpartition("/")
    return service, name


def _status_code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> grpc.StatusCode:
    """The status the call ended with: the one the handler set or aborted with, else from how it ended."""
    code: Any = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    if error is None:
        return grpc.StatusCode.OK
    return grpc.StatusCode.CANCELLED if isinstance(error, asyncio.CancelledError) else grpc.StatusCode.UNKNOWN


class ServerTelemetry(grpc.aio.ServerInterceptor):
    def __init__(self, *, workflow_root_methods: Iterable[str] = WORKFLOW_ROOT_METHODS) -> None:
        self._roots = frozenset(workflow_root_methods)
        self._tracer = trace.get_tracer("treadle.grpc")
        self._duration = metrics.get_meter("treadle.grpc").create_histogram(
            names.RPC_SERVER_CALL_DURATION, unit="s", description="Duration of RPCs as the server saw them"
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        service, name = _split_method(method)
        if handler is None or service in UNOBSERVED_SERVICES:
            return handler
        kind = _behavior_field(handler)
        behavior = getattr(handler, kind)
        wrap = self._wrap_stream if handler.response_streaming else self._wrap_unary
        return handler._replace(**{kind: wrap(method, service, name, behavior)})  # type: ignore[attr-defined, no-any-return]

    def _start(
        self, method: str, service: str, name: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[trace.Span, Context]:
        incoming = context_from_metadata(context.invocation_metadata())
        links: list[Link] = []
        if method in self._roots:
            if incoming is not None:
                links.append(Link(trace.get_current_span(incoming).get_span_context()))
            trace_id = new_workflow_trace_id()
            incoming = context_with_parent(remote_span_context(trace_id, root_span_id(trace_id)))
        parent = incoming if incoming is not None else Context()
        span = self._tracer.start_span(
            f"{service}/{name}",
            context=parent,
            kind=SpanKind.SERVER,
            links=links,
            attributes={names.RPC_SYSTEM: "grpc", names.RPC_SERVICE: service, names.RPC_METHOD: name},
        )
        return span, trace.set_span_in_context(span, parent)

    def _finish(
        self,
        span: trace.Span,
        service: str,
        name: str,
        started: float,
        context: grpc.aio.ServicerContext[Any, Any],
        error: BaseException | None,
    ) -> None:
        code = _status_code(context, error)
        span.set_attribute(names.RPC_GRPC_STATUS_CODE, code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()
        self._duration.record(
            time.perf_counter() - started,
            {
                names.RPC_SYSTEM: "grpc",
                names.RPC_SERVICE: service,
                names.RPC_METHOD: name,
                names.RPC_GRPC_STATUS_CODE: code.value[0],
            },
        )

    def _wrap_unary(self, method: str, service: str, name: str, behavior: Behavior) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            span, ctx = self._start(method, service, name, context)
            error: BaseException | None = None
            token = otel_context.attach(ctx)
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                otel_context.detach(token)
                self._finish(span, service, name, started, context, error)

        return call

    def _wrap_stream(self, method: str, service: str, name: str, behavior: Behavior) -> Behavior:
        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            started = time.perf_counter()
            span, ctx = self._start(method, service, name, context)
            error: BaseException | None = None
            responses = behavior(request, context)
            try:
                while True:
                    # Attached per step: a generator may be resumed, or closed, from another context.
                    with attached(ctx):
                        try:
                            item = await anext(responses)
                        except StopAsyncIteration:
                            break
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                await responses.aclose()
                self._finish(span, service, name, started, context, error)

        return stream


def _behavior_field(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    return {
        (False, False): "unary_unary",
        (False, True): "unary_stream",
        (True, False): "stream_unary",
        (True, True): "stream_stream",
    }[(handler.request_streaming, handler.response_streaming)]


def _with_current_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    """details with the current span's traceparent; unchanged when there is no current span."""
    traceparent = current_traceparent()
    if not traceparent:
        return details
    kept = [(k, v) for k, v in (details.metadata or ()) if k not in (TRACEPARENT, TRACESTATE)]
    metadata = grpc.aio.Metadata(*kept, (TRACEPARENT, traceparent))
    return details._replace(metadata=metadata)  # type: ignore[attr-defined, no-any-return]


class _UnaryUnaryPropagation(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_current_context(client_call_details), request)


class _UnaryStreamPropagation(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_current_context(client_call_details), request)


class _StreamUnaryPropagation(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_current_context(client_call_details), request_iterator)


class _StreamStreamPropagation(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_current_context(client_call_details), request_iterator)


def client_propagation() -> list[grpc.aio.ClientInterceptor]:
    """The interceptors for a channel: one per call shape, since grpc.aio files each object under one shape only."""
    return [
        _UnaryUnaryPropagation(),
        _UnaryStreamPropagation(),
        _StreamUnaryPropagation(),
        _StreamStreamPropagation(),
    ]
