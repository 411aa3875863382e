"""A minimal OTLP/gRPC trace receiver: what a collector would get, kept in memory.

For tests and benchmarks: it runs on loopback in the caller's event loop and
decodes the real opentelemetry-proto messages the exporters send.

    receiver = await OtlpTraceReceiver.start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    ...
    spans = await receiver.wait_for(lambda spans: len(spans) >= 10, timeout=10)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    # "" for a root span.
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)
    # (trace id, span id) of each link.
    links: tuple[tuple[str, str], ...] = ()
    # opentelemetry.proto Status.StatusCode: 0 unset, 1 ok, 2 error.
    status_code: int = 0

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpTraceReceiver) -> None:
        self._receiver = receiver

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receiver.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpTraceReceiver:
    def __init__(self, server: grpc.aio.Server, port: int) -> None:
        self._server = server
        self.port = port
        self.spans: list[ReceivedSpan] = []
        self.exports = 0
        self._changed = asyncio.Event()

    @classmethod
    async def start(cls) -> OtlpTraceReceiver:
        server = grpc.aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        receiver = cls(server, port)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(receiver), server
        )
        await server.start()
        return receiver

    @property
    def endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT (the http:// scheme makes the exporter use plaintext)."""
        return f"http://127.0.0.1:{self.port}"

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        self.exports += 1
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            service=service,
                            attributes=_attributes(span.attributes),
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                            status_code=span.status.code,
                        )
                    )
        self._changed.set()

    async def wait_for(self, done: Callable[[list[ReceivedSpan]], bool], timeout: float) -> list[ReceivedSpan]:
        """The spans, once done(spans) holds; TimeoutError when it does not within timeout seconds."""
        async with asyncio.timeout(timeout):
            while not done(self.spans):
                self._changed.clear()
                await self._changed.wait()
        return list(self.spans)

    async def stop(self) -> None:
        await self._server.stop(0)
