"""The one table that maps treadle's domain errors to gRPC status codes.

Every servicer method is wrapped with `grpc_errors`, so handlers raise domain
errors and never pick status codes themselves. Details travel as
google.rpc.Status (grpcio-status): BadRequest field violations for invalid
input, PreconditionFailure for state conflicts, ResourceInfo for NotFound.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from treadle import errors
from treadle.grpcutil.inprocess import InProcessAbort, InProcessContext

log = logging.getLogger(__name__)

STATUS_TABLE: tuple[tuple[type[errors.TreadleError], grpc.StatusCode], ...] = (
    (errors.InvalidSpec, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DataLoss, grpc.StatusCode.DATA_LOSS),
)


def status_code_for(exc: errors.TreadleError) -> grpc.StatusCode:
    for kind, code in STATUS_TABLE:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def to_rpc_status(exc: errors.TreadleError) -> status_pb2.Status:
    code = status_code_for(exc)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=str(exc))
    detail: Any = None
    if isinstance(exc, errors.InvalidSpec):
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in exc.violations
            ]
        )
    elif isinstance(exc, (errors.NotFound, errors.AlreadyExists)):
        detail = error_details_pb2.ResourceInfo(resource_type=exc.kind, resource_name=exc.name, description=str(exc))
    elif isinstance(exc, errors.FailedPrecondition):
        v = exc.violation
        detail = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
            ]
        )
    if detail is not None:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: errors.TreadleError) -> None:
    """End the call with the status that the table gives exc, details included."""
    if isinstance(context, InProcessContext):
        raise InProcessAbort(exc)  # the caller gets exc itself (treadle/grpcutil/inprocess.py)
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(exc)))


F = TypeVar("F", bound=Callable[..., Any])


def grpc_errors(method: F) -> F:
    """Wrap a unary or server-streaming servicer method so domain errors become statuses."""
    if _is_async_gen(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except errors.TreadleError as exc:
                await abort_with(context, exc)

        return cast(F, stream_wrapper)

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await cast(Callable[..., Awaitable[Any]], method)(self, request, context)
        except errors.TreadleError as exc:
            await abort_with(context, exc)

    return cast(F, unary_wrapper)


def _is_async_gen(fn: Callable[..., Any]) -> bool:
    import inspect

    return inspect.isasyncgenfunction(fn)


def error_from_rpc(exc: grpc.aio.AioRpcError | grpc.RpcError) -> errors.TreadleError:
    """Turn a failed call back into the domain error the server raised."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = exc.details() if hasattr(exc, "details") else str(exc)
    status = _rich_status(exc)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = _field_violations(status) or [errors.FieldViolation("", message or "invalid argument")]
        return errors.InvalidSpec(violations)
    if code == grpc.StatusCode.NOT_FOUND:
        info = _detail(status, error_details_pb2.ResourceInfo)
        if info is not None:
            return errors.NotFound(info.resource_type, info.resource_name)
        err = errors.NotFound("resource", "")
        err.args = (message,)
        return err
    if code == grpc.StatusCode.ALREADY_EXISTS:
        info = _detail(status, error_details_pb2.ResourceInfo)
        if info is not None:
            return errors.AlreadyExists(info.resource_type, info.resource_name)
        taken = errors.AlreadyExists("resource", "")
        taken.args = (message,)
        return taken
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        failure = _detail(status, error_details_pb2.PreconditionFailure)
        if failure is not None and failure.violations:
            v = failure.violations[0]
            description = str(v.description or message or "failed precondition")
            return errors.FailedPrecondition(description, subject=v.subject, type=v.type or "STATE")
        return errors.FailedPrecondition(str(message or "failed precondition"))
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return errors.PermissionDenied(message)
    if code == grpc.StatusCode.DATA_LOSS:
        return errors.DataLoss(message or "data loss")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.Unavailable(f"{code.name.lower()}: {message}")
    return errors.TreadleError(f"{code.name}: {message}")


def _rich_status(exc: Any) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached, for sync and aio errors alike."""
    try:
        return rpc_status.from_call(exc)
    except (AttributeError, ValueError, TypeError):
        return None


def _detail(status: status_pb2.Status | None, kind: Any) -> Any:
    if status is None:
        return None
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            msg = kind()
            packed.Unpack(msg)
            return msg
    return None


def _field_violations(status: status_pb2.Status | None) -> list[errors.FieldViolation]:
    bad = _detail(status, error_details_pb2.BadRequest)
    if bad is None:
        return []
    return [errors.FieldViolation(v.field, v.description) for v in bad.field_violations]


def log_unexpected(exc: BaseException) -> None:
    log.exception("unexpected error", exc_info=exc)
