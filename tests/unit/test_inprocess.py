"""treadle.grpcutil.inprocess: calls between co-hosted services go straight to the servicer.

The servicer here is a real generated SchedulerService servicer whose methods are
wrapped with @grpc_errors, as every treadle servicer is. Where it matters, the
same servicer is also served over a real loopback gRPC server, so that the
in-process outcome can be compared with what a remote caller gets back through
error_from_rpc.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from treadle import errors
from treadle.grpcutil import inprocess
from treadle.grpcutil.server import ServiceBinding, create_server
from treadle.grpcutil.status import error_from_rpc, grpc_errors
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

SERVICE = scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name
Context = Any
Behaviour = Callable[[scheduler_pb2.CompleteStepRequest, Context], Awaitable[scheduler_pb2.CompleteStepResponse]]


class Scheduler(scheduler_pb2_grpc.SchedulerServiceServicer):
    """CompleteStep does whatever the test gave it; every call is recorded with what the context showed."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.seen: list[tuple[scheduler_pb2.CompleteStepRequest, tuple[Any, ...], float | None, str]] = []

    @grpc_errors
    async def CompleteStep(
        self, request: scheduler_pb2.CompleteStepRequest, context: Context
    ) -> scheduler_pb2.CompleteStepResponse:
        self.seen.append((request, tuple(context.invocation_metadata()), context.time_remaining(), context.peer()))
        if self.behaviour is not None:
            return await self.behaviour(request, context)
        return scheduler_pb2.CompleteStepResponse(accepted=request.attempt == 0)


def raising(exc: BaseException) -> Behaviour:
    async def behaviour(request: scheduler_pb2.CompleteStepRequest, context: Context) -> Any:
        raise exc

    return behaviour


def request(workflow: str = "wf", attempt: int = 0) -> scheduler_pb2.CompleteStepRequest:
    return scheduler_pb2.CompleteStepRequest(workflow=workflow, node_id="n1", attempt=attempt)


@contextlib.asynccontextmanager
async def remote_stub(servicer: object) -> AsyncIterator[scheduler_pb2_grpc.SchedulerServiceStub]:
    """A real stub on a real channel to `servicer` served on a loopback port."""
    binding = ServiceBinding(SERVICE, servicer, scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server)
    server = await create_server([binding])
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield scheduler_pb2_grpc.SchedulerServiceStub(channel)
    finally:
        await channel.close()
        await server.server.stop(None)


def in_process(servicer: object, remote: object = None) -> Any:
    return inprocess.InProcessStub(SERVICE, servicer, remote, {"CompleteStep"})


# ----------------------------------------------------------------------------- calls and results


def test_a_listed_method_calls_the_servicer_directly() -> None:
    async def main() -> None:
        servicer = Scheduler()
        stub = in_process(servicer)
        sent = request(attempt=0)
        response = await stub.CompleteStep(sent, timeout=5, metadata=(("x-treadle-step-token", "tok"),))
        assert response == scheduler_pb2.CompleteStepResponse(accepted=True)
        assert not (await stub.CompleteStep(request(attempt=1))).accepted
        assert len(servicer.seen) == 2
        got, metadata, remaining, peer = servicer.seen[0]
        assert got is sent  # no serialization on the way
        assert metadata == (("x-treadle-step-token", "tok"),)
        assert remaining is not None and 4.0 < remaining <= 5.0
        assert peer == "in-process"
        assert servicer.seen[1][1:3] == ((), None)  # no metadata, no deadline

    asyncio.run(main())


def test_the_call_runs_in_an_internal_span_named_like_the_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(inprocess, "_tracer", provider.get_tracer("test"))

    async def main() -> None:
        stub = in_process(Scheduler())
        await stub.CompleteStep(request())
        with pytest.raises(errors.NotFound):
            await in_process(Scheduler(raising(errors.NotFound("workflow", "gone")))).CompleteStep(request())

    asyncio.run(main())
    ok, failed = exporter.get_finished_spans()
    for span in (ok, failed):
        assert span.name == "treadle.scheduler.v1.SchedulerService/CompleteStep"
        assert span.kind == SpanKind.INTERNAL
        assert dict(span.attributes or {}) == {
            "rpc.system": "inprocess",
            "rpc.service": "treadle.scheduler.v1.SchedulerService",
            "rpc.method": "CompleteStep",
        }
    assert ok.status.is_ok
    assert not failed.status.is_ok  # the error is recorded on the span


# ----------------------------------------------------------------------------- errors


DOMAIN_ERRORS = [
    errors.NotFound("workflow", "wf-x"),
    errors.InvalidSpec([errors.FieldViolation("phase", "phase must be SUCCEEDED, FAILED or ERROR")]),
    errors.AlreadyExists("workflow", "wf-y"),
    errors.FailedPrecondition("the workflow is suspended", subject="wf-z", type="STATE"),
    errors.PermissionDenied("step token for workflow 'a' cannot act for workflow 'b'"),
    errors.DataLoss("digest mismatch"),
]


def fields(exc: BaseException) -> dict[str, Any]:
    """What a caller may read off a domain error."""
    found: dict[str, Any] = {"type": type(exc), "str": str(exc)}
    for name in ("kind", "name", "violations", "violation"):
        if hasattr(exc, name):
            found[name] = getattr(exc, name)
    return found


@pytest.mark.parametrize("raised", DOMAIN_ERRORS, ids=lambda e: type(e).__name__)
def test_a_domain_error_reaches_the_caller_as_it_would_over_grpc(raised: errors.TreadleError) -> None:
    async def main() -> tuple[BaseException, BaseException]:
        servicer = Scheduler(raising(raised))
        with pytest.raises(errors.TreadleError) as here:
            await in_process(servicer).CompleteStep(request(), timeout=5)
        async with remote_stub(servicer) as remote:
            with pytest.raises(grpc.aio.AioRpcError) as there:
                await remote.CompleteStep(request(), timeout=5)
        return here.value, error_from_rpc(there.value)

    local, rebuilt = asyncio.run(main())
    assert local is raised  # the servicer's own exception, fields and all
    assert fields(local) == fields(rebuilt)


def test_not_found_and_invalid_spec_keep_their_fields() -> None:
    async def main() -> None:
        with pytest.raises(errors.NotFound) as missing:
            await in_process(Scheduler(raising(errors.NotFound("workflow", "wf-x")))).CompleteStep(request())
        assert type(missing.value) is errors.NotFound
        assert (missing.value.kind, missing.value.name) == ("workflow", "wf-x")
        assert str(missing.value) == "workflow 'wf-x' not found"

        violations = [errors.FieldViolation("phase", "bad phase"), errors.FieldViolation("node_id", "required")]
        with pytest.raises(errors.InvalidSpec) as invalid:
            await in_process(Scheduler(raising(errors.InvalidSpec(violations)))).CompleteStep(request())
        assert type(invalid.value) is errors.InvalidSpec
        assert invalid.value.violations == violations

    asyncio.run(main())


def test_an_unavailable_scheduler_is_unavailable_to_the_caller() -> None:
    async def main() -> None:
        with pytest.raises(errors.Unavailable, match="restarting"):
            await in_process(Scheduler(raising(errors.Unavailable("restarting")))).CompleteStep(request())

    asyncio.run(main())


def test_a_slow_servicer_hits_the_deadline_as_unavailable() -> None:
    cancelled = asyncio.Event()

    async def slow(request: scheduler_pb2.CompleteStepRequest, context: Context) -> Any:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return scheduler_pb2.CompleteStepResponse(accepted=True)

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable) as late:
            await in_process(Scheduler(slow)).CompleteStep(request(), timeout=0.05)
        assert time.monotonic() - started < 1.0
        assert str(late.value).startswith("deadline_exceeded: ")
        assert "treadle.scheduler.v1.SchedulerService/CompleteStep" in str(late.value)
        assert cancelled.is_set()  # the servicer's work was cancelled, as a server cancels an expired call

    asyncio.run(main())


@pytest.mark.parametrize("timeout", [5.0, None])
def test_a_timeout_error_of_the_servicers_own_is_unknown_not_a_deadline(timeout: float | None) -> None:
    """Over gRPC a servicer's own TimeoutError (a socket's, say) is UNKNOWN; only the call's deadline is not."""

    async def main() -> None:
        with pytest.raises(errors.TreadleError) as failed:
            await in_process(Scheduler(raising(TimeoutError("socket timed out")))).CompleteStep(
                request(), timeout=timeout
            )
        assert type(failed.value) is errors.TreadleError
        assert str(failed.value) == "UNKNOWN: treadle.scheduler.v1.SchedulerService/CompleteStep failed: TimeoutError"

    asyncio.run(main())


def test_an_unexpected_exception_becomes_unknown_without_its_details(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        with pytest.raises(errors.TreadleError) as failed:
            await in_process(Scheduler(raising(KeyError("secret-detail")))).CompleteStep(request())
        error = failed.value
        assert type(error) is errors.TreadleError
        assert str(error).startswith("UNKNOWN: ")
        assert str(error) == "UNKNOWN: treadle.scheduler.v1.SchedulerService/CompleteStep failed: KeyError"
        assert "secret-detail" not in str(error)  # as over gRPC: the caller never gets the traceback
        assert error.__cause__ is None and error.__suppress_context__

    with caplog.at_level("ERROR", logger=inprocess.__name__):
        asyncio.run(main())
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)  # the server side logs it


def test_abort_through_the_context_ends_the_call_with_a_treadle_error() -> None:
    async def aborting(request: scheduler_pb2.CompleteStepRequest, context: Context) -> Any:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")
        raise AssertionError("abort returned")

    async def main() -> None:
        with pytest.raises(errors.TreadleError, match="not now"):
            await in_process(Scheduler(aborting)).CompleteStep(request())

    asyncio.run(main())


# ----------------------------------------------------------------------------- routing


def test_a_method_not_listed_is_the_remote_stubs() -> None:
    async def main() -> None:
        servicer = Scheduler()
        async with remote_stub(servicer) as remote:
            stub = in_process(servicer, remote)
            assert stub.GetStepContext is remote.GetStepContext
            assert stub.WatchWorkflowStatus is remote.WatchWorkflowStatus  # streams always cross a channel
            assert stub.CompleteStep is not remote.CompleteStep
            # The remote really is called for those: the servicer's base answers UNIMPLEMENTED over gRPC.
            with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
                await stub.GetStepContext(scheduler_pb2.GetStepContextRequest(workflow="wf"), timeout=5)
            assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert servicer.seen == []

    asyncio.run(main())


def test_stub_is_the_remote_unless_the_service_is_hosted_at_that_address() -> None:
    address, other = "127.0.0.1:59901", "127.0.0.1:59902"
    remote, servicer = object(), Scheduler()
    assert inprocess.stub(address, SERVICE, remote, {"CompleteStep"}) is remote
    inprocess.host(address, SERVICE, servicer)
    try:
        local = inprocess.stub(address, SERVICE, remote, {"CompleteStep"})
        assert isinstance(local, inprocess.InProcessStub)
        assert local.CompleteStep  # resolves to the servicer's method
        # Another address, or another service at this one, is still the remote.
        assert inprocess.stub(other, SERVICE, remote, {"CompleteStep"}) is remote
        assert inprocess.stub(address, "treadle.outputs.v1.OutputService", remote, {"X"}) is remote
    finally:
        inprocess.unhost(address)
    assert inprocess.stub(address, SERVICE, remote, {"CompleteStep"}) is remote
    inprocess.unhost(address)  # unhosting twice is harmless


def test_unhost_forgets_only_that_address() -> None:
    first, second = "127.0.0.1:59903", "127.0.0.1:59904"
    remote = object()
    inprocess.host(first, SERVICE, Scheduler())
    inprocess.host(second, SERVICE, Scheduler())
    try:
        inprocess.unhost(first)
        assert inprocess.stub(first, SERVICE, remote, {"CompleteStep"}) is remote
        assert isinstance(inprocess.stub(second, SERVICE, remote, {"CompleteStep"}), inprocess.InProcessStub)
    finally:
        inprocess.unhost(first)
        inprocess.unhost(second)


def test_the_hosted_servicer_answers_through_stub() -> None:
    address = "127.0.0.1:59905"
    servicer = Scheduler()
    inprocess.host(address, SERVICE, servicer)
    try:

        async def main() -> bool:
            stub = inprocess.stub(address, SERVICE, None, {"CompleteStep"})
            response = await stub.CompleteStep(request(), timeout=5)
            return bool(response.accepted)

        assert asyncio.run(main())
        assert len(servicer.seen) == 1
    finally:
        inprocess.unhost(address)
