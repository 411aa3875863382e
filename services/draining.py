"""Graceful shutdown of a treadle server: drain the public API first, then the rest.

In the all-in-one server, admission's calls in flight reach the scheduler,
outputs and artifacts on the very same server. Stopping the whole server at
once would turn those inner calls away and fail the outer ones. So the drain
goes in stages: admission stops taking calls first (new ones get UNAVAILABLE)
and its calls in flight finish while its peers still answer; then the server
stops, letting what is left finish within the rest of the grace period.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc

DRAINING_MESSAGE = "the server is shutting down; retry against another replica or once it is back"


class CallGate(grpc.aio.ServerInterceptor):
    """Counts calls in flight per service and turns new calls away from closed services.

    Only the services it is told about are counted or closed; health and
    reflection pass through untouched, so probes still get their answers.
    """

    def __init__(self, services: Iterable[str]) -> None:
        self._services = frozenset(services)
        self._closed: set[str] = set()
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._changed = asyncio.Event()

    def close(self, services: Iterable[str]) -> None:
        self._closed.update(services)

    def in_flight(self, service: str) -> int:
        return self._in_flight[service]

    async def wait_idle(self, services: Iterable[str], timeout: float) -> bool:
        """True once no call to these services is in flight; False when timeout passed first."""
        wanted = tuple(services)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(self._in_flight[name] for name in wanted):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        service = _service_of(handler_call_details.method)
        if handler is None or service not in self._services:
            return handler
        kind = _behavior_field(handler)
        behavior = getattr(handler, kind)
        if service in self._closed:
            return handler._replace(**{kind: _refuse})  # type: ignore[attr-defined, no-any-return]
        return handler._replace(**{kind: self._counted(service, behavior)})  # type: ignore[attr-defined, no-any-return]

    def _counted(self, service: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                self._enter(service)
                try:
                    async for item in behavior(request, context):
                        yield item
                finally:
                    self._leave(service)

            return stream

        async def call(request: Any, context: Any) -> Any:
            self._enter(service)
            try:
                return await behavior(request, context)
            finally:
                self._leave(service)

        return call

    def _enter(self, service: str) -> None:
        self._in_flight[service] += 1

    def _leave(self, service: str) -> None:
        self._in_flight[service] -= 1
        self._changed.set()


async def _refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING_MESSAGE)


def _service_of(method: str) -> str:
    """ "/treadle.admission.v1.AdmissionService/GetWorkflow" -> "treadle.admission.v1.AdmissionService"."""
    return method.strip("/").rpartition("/")[0]


def _behavior_field(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    streaming = (handler.request_streaming, handler.response_streaming)
    return {
        (False, False): "unary_unary",
        (False, True): "unary_stream",
        (True, False): "stream_unary",
        (True, True): "stream_stream",
    }[streaming]
