"""Calls between services hosted in one process, without the network.

`treadle serve all` hosts every service in one process. A call from one of them
to another then goes straight to the callee's servicer: same validation, same
conversions, same errors and the same deadline, but no serialization, no HTTP/2
and no second trip through the interceptors. In a split deployment the callers
use a real stub instead; they cannot tell the difference, because a failed call
raises the `TreadleError` that `error_from_rpc` would have rebuilt.

Only unary-unary methods go in-process; any other attribute is the real stub's,
so streams still cross a channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from opentelemetry import trace

from treadle import errors
from treadle.telemetry import names

Metadata = Sequence[tuple[str, str]]
log = logging.getLogger(__name__)
_tracer = trace.get_tracer("treadle.inprocess")


class InProcessAbort(Exception):
    """Raised by `InProcessContext.abort`: the servicer ended the call with a status of its own."""

    def __init__(self, error: errors.TreadleError) -> None:
        super().__init__(str(error))
        self.error = error


class InProcessContext:
    """The part of grpc.aio.ServicerContext that treadle's servicers use."""

    def __init__(self, metadata: Metadata, deadline: float | None) -> None:
        self._metadata = tuple(metadata)
        self._deadline = deadline

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def peer(self) -> str:
        return "in-process"

    async def abort(self, code: Any, details: str = "", trailing_metadata: Any = ()) -> None:
        raise InProcessAbort(errors.TreadleError(details))

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    def set_code(self, code: Any) -> None:
        pass

    def set_details(self, details: str) -> None:
        pass


class InProcessStub:
    """A stub whose listed unary methods call `servicer` directly; everything else is `remote`'s."""

    def __init__(self, service: str, servicer: object, remote: object, methods: Collection[str]) -> None:
        self._service = service
        self._servicer = servicer
        self._remote = remote
        self._methods = frozenset(methods)

    def __getattr__(self, method: str) -> Any:
        if method not in self._methods:
            return getattr(self._remote, method)
        handler = getattr(self._servicer, method)
        return _UnaryCall(f"{self._service}/{method}", method, handler)


class _UnaryCall:
    def __init__(self, full_name: str, method: str, handler: Callable[..., Any]) -> None:
        self._full_name = full_name
        self._method = method
        self._handler = handler

    async def __call__(self, request: Any, *, timeout: float | None = None, metadata: Metadata = ()) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        context = InProcessContext(metadata, deadline)
        attributes = {names.RPC_SYSTEM: "inprocess", names.RPC_SERVICE: self._full_name.rsplit("/", 1)[0]}
        attributes[names.RPC_METHOD] = self._method
        with _tracer.start_as_current_span(self._full_name, kind=trace.SpanKind.INTERNAL, attributes=attributes):
            limit = asyncio.timeout_at(deadline)
            try:
                async with limit:
                    return await self._handler(request, context)
            except InProcessAbort as aborted:
                raise aborted.error from None
            except errors.TreadleError:
                raise
            except TimeoutError:
                if limit.expired():
                    # As error_from_rpc names a DEADLINE_EXCEEDED call.
                    raise errors.Unavailable(f"deadline_exceeded: {self._full_name} took over {timeout:g} s") from None
                raise self._unexpected(TimeoutError) from None
            except Exception as exc:
                raise self._unexpected(type(exc)) from None

    def _unexpected(self, kind: type[BaseException]) -> errors.TreadleError:
        """A bug in the servicer: over gRPC the caller would get UNKNOWN, never the traceback."""
        log.exception("in-process call %s failed", self._full_name)
        return errors.TreadleError(f"UNKNOWN: {self._full_name} failed: {kind.__name__}")


# Servicers hosted by this process, by (the address its server is reached at, full service name).
_hosted: dict[tuple[str, str], object] = {}


def host(address: str, service: str, servicer: object) -> None:
    """Make `servicer` reachable in-process by callers that would dial `address` for `service`."""
    _hosted[(address, service)] = servicer


def unhost(address: str) -> None:
    for key in [key for key in _hosted if key[0] == address]:
        del _hosted[key]


def stub(address: str, service: str, remote: Any, methods: Collection[str]) -> Any:
    """`remote`, or an InProcessStub for `methods` when this process hosts `service` at `address`."""
    servicer = _hosted.get((address, service))
    return remote if servicer is None else InProcessStub(service, servicer, remote, methods)
