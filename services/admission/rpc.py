"""The wrapper every AdmissionService method gets: each failure leaves as a google.rpc.Status.

Domain errors map through the one table (treadle.grpcutil.status). Anything
else is a bug: it is logged with its traceback and the client gets INTERNAL
with a message that reveals nothing of the server's insides.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc

from treadle.errors import TreadleError
from treadle.grpcutil.status import grpc_errors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
INTERNAL_MESSAGE = "internal error; the server's log has the details"


class InternalError(TreadleError):
    """An unexpected failure. It has no row in the status table, so it maps to INTERNAL."""


def rpc(method: F) -> F:
    """grpc_errors, plus unexpected exceptions turned into InternalError (and logged)."""
    return grpc_errors(_unexpected_as_internal(method))


def _unexpected_as_internal(method: F) -> F:
    name = method.__name__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except (TreadleError, grpc.aio.AbortError):
                raise
            except Exception as exc:
                raise _internal(name) from exc

        return cast(F, stream)

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        try:
            return await cast(Callable[..., Awaitable[Any]], method)(self, request, context)
        except (TreadleError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            raise _internal(name) from exc

    return cast(F, unary)


def _internal(method: str) -> InternalError:
    log.exception("AdmissionService.%s failed unexpectedly", method)
    return InternalError(INTERNAL_MESSAGE)
