"""OutputService over real gRPC: step tokens, idempotent reports, the forward to the scheduler, and logs sent
with a report (stored through a real ArtifactService, over gRPC as in a split deployment)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from treadle.artifacts.v1 import artifacts_pb2, artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA, StepTokens
from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import RunningServer, ServiceBinding, create_server
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from treadle.services.artifacts.repository import ArtifactRepository
from treadle.services.artifacts.service import SERVICE_NAME as ARTIFACT_SERVICE
from treadle.services.artifacts.service import ArtifactServicer
from treadle.services.artifacts.stores import MemoryStore
from treadle.services.outputs.log_store import INLINE_LOG_BYTES
from treadle.services.outputs.setup import build
from treadle.store.sqlite import open_database
from treadle.workflow.v1 import workflow_pb2

TOKENS = StepTokens(b"0123456789abcdef-test-secret")


class FakeScheduler(scheduler_pb2_grpc.SchedulerServiceServicer):
    """Records CompleteStep calls; answers UNAVAILABLE while `down` is set."""

    def __init__(self) -> None:
        self.completed: list[scheduler_pb2.CompleteStepRequest] = []
        self.down = False

    async def CompleteStep(
        self, request: scheduler_pb2.CompleteStepRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> scheduler_pb2.CompleteStepResponse:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scheduler is down")
        self.completed.append(request)
        return scheduler_pb2.CompleteStepResponse(accepted=True)


@dataclass
class Harness:
    stub: outputs_pb2_grpc.OutputServiceAsyncStub
    scheduler: FakeScheduler
    # What the ArtifactService beside the scheduler stored.
    store: MemoryStore

    async def read(self, key: str) -> bytes:
        reader = await self.store.get(key)
        async with reader:
            return b"".join([chunk async for chunk in reader])


@asynccontextmanager
async def running(
    tmp_path: Path, *, scheduler_configured: bool = True, artifacts_configured: bool = True
) -> AsyncIterator[Harness]:
    fake = FakeScheduler()  # type: ignore[abstract]  # the generated base answers UNIMPLEMENTED for the rest
    store = MemoryStore()
    scheduler_server = await create_server(
        [
            ServiceBinding(
                "treadle.scheduler.v1.SchedulerService", fake, scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server
            ),
            ServiceBinding(
                ARTIFACT_SERVICE,
                ArtifactServicer(ArtifactRepository(store, tokens=TOKENS)),
                artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server,
            ),
        ]
    )
    conn = open_database(tmp_path / "state.db")
    app = build(ServerConfig(data_dir=tmp_path), conn, TOKENS)
    server: RunningServer = await create_server([app.binding])
    await app.start(
        ServiceAddresses(
            scheduler=scheduler_server.address if scheduler_configured else "",
            artifacts=scheduler_server.address if artifacts_configured else "",
        )
    )
    channel = open_channel(server.address)
    try:
        yield Harness(outputs_pb2_grpc.OutputServiceStub(channel), fake, store)
    finally:
        await channel.close()
        await server.drain(0)
        await app.stop()
        await scheduler_server.drain(0)
        conn.close()


def run(tmp_path: Path, test: Callable[[Harness], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with running(tmp_path, **options) as harness:
            await test(harness)

    asyncio.run(main())


def report(node_id: str = "wf-1", attempt: int = 0, result: str = "hello") -> outputs_pb2.ReportStepOutputsRequest:
    return outputs_pb2.ReportStepOutputsRequest(
        workflow="wf",
        node_id=node_id,
        attempt=attempt,
        phase=workflow_pb2.NODE_PHASE_SUCCEEDED,
        outputs=workflow_pb2.Outputs(
            parameters=[workflow_pb2.Parameter(name="out", value="42")],
            artifacts=[
                workflow_pb2.Artifact(
                    name="data", stored=workflow_pb2.StoredArtifact(key="wf/pod/data.tgz", archive="tgz")
                )
            ],
            result=result,
            exit_code="0",
        ),
        log=workflow_pb2.StoredArtifact(key="wf/pod/main.log", size_bytes=6, archive="none"),
    )


def token_for(request: outputs_pb2.ReportStepOutputsRequest) -> tuple[tuple[str, str]]:
    return ((STEP_TOKEN_METADATA, TOKENS.issue(request.workflow, request.node_id, request.attempt)),)


async def expect_code(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields an INVALID_ARGUMENT error's BadRequest detail names, in order."""
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


def test_a_report_is_stored_and_forwarded(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        response = await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        assert response.recorded is True
        [completed] = h.scheduler.completed
        assert (completed.workflow, completed.node_id, completed.attempt) == ("wf", "wf-1", 0)
        assert completed.phase == workflow_pb2.NODE_PHASE_SUCCEEDED
        assert completed.outputs == sent.outputs
        stored = await h.stub.GetStepOutputs(
            outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5
        )
        assert stored.report == sent

    run(tmp_path, test)


def test_reports_need_a_token_for_exactly_that_step(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        await expect_code(h.stub.ReportStepOutputs(sent, timeout=5), grpc.StatusCode.PERMISSION_DENIED)
        other_node = ((STEP_TOKEN_METADATA, TOKENS.issue("wf", "wf-2", 0)),)
        await expect_code(
            h.stub.ReportStepOutputs(sent, metadata=other_node, timeout=5), grpc.StatusCode.PERMISSION_DENIED
        )
        other_attempt = ((STEP_TOKEN_METADATA, TOKENS.issue("wf", "wf-1", 1)),)
        await expect_code(
            h.stub.ReportStepOutputs(sent, metadata=other_attempt, timeout=5), grpc.StatusCode.PERMISSION_DENIED
        )
        forged = ((STEP_TOKEN_METADATA, StepTokens(b"another-secret-0123456789").issue("wf", "wf-1", 0)),)
        await expect_code(h.stub.ReportStepOutputs(sent, metadata=forged, timeout=5), grpc.StatusCode.PERMISSION_DENIED)
        get = h.stub.GetStepOutputs(outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5)
        await expect_code(get, grpc.StatusCode.NOT_FOUND)
        assert h.scheduler.completed == []

    run(tmp_path, test)


def test_an_identical_report_is_not_recorded_twice_but_forwarded_again(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        first = await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        again = await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        assert (first.recorded, again.recorded) == (True, False)
        assert len(h.scheduler.completed) == 2

    run(tmp_path, test)


def test_a_different_report_for_the_same_attempt_is_a_conflict(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        changed = report(result="something else")
        error = await expect_code(
            h.stub.ReportStepOutputs(changed, metadata=token_for(changed), timeout=5),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        status = rpc_status.from_call(error)
        assert status is not None
        failure = error_details_pb2.PreconditionFailure()
        assert status.details[0].Unpack(failure)
        assert failure.violations[0].subject == "wf/wf-1/0"
        stored = await h.stub.GetStepOutputs(
            outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5
        )
        assert stored.report.outputs.result == "hello"
        assert len(h.scheduler.completed) == 1

    run(tmp_path, test)


def test_an_invalid_report_names_the_field(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        sent.phase = workflow_pb2.NODE_PHASE_RUNNING
        sent.outputs.exit_code = "zero"
        error = await expect_code(
            h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert set(violated_fields(error)) == {"phase", "outputs.exit_code"}

    run(tmp_path, test)


def test_a_failed_forward_is_unavailable_keeps_the_report_and_can_be_retried(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        h.scheduler.down = True
        await expect_code(
            h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5), grpc.StatusCode.UNAVAILABLE
        )
        stored = await h.stub.GetStepOutputs(
            outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5
        )
        assert stored.report == sent
        h.scheduler.down = False
        retried = await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        assert retried.recorded is False
        assert len(h.scheduler.completed) == 1

    run(tmp_path, test)


def test_without_a_scheduler_address_reports_are_unavailable(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = report()
        await expect_code(
            h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5), grpc.StatusCode.UNAVAILABLE
        )

    run(tmp_path, test, scheduler_configured=False)


def test_get_picks_an_attempt_or_the_latest_and_delete_removes_them_all(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        for attempt in (0, 1):
            sent = report(attempt=attempt, result=f"attempt {attempt}")
            await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        latest = await h.stub.GetStepOutputs(
            outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1", attempt=-1), timeout=5
        )
        first = await h.stub.GetStepOutputs(
            outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1", attempt=0), timeout=5
        )
        assert (latest.report.outputs.result, first.report.outputs.result) == ("attempt 1", "attempt 0")
        await expect_code(
            h.stub.GetStepOutputs(
                outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1", attempt=-2), timeout=5
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        deleted = await h.stub.DeleteWorkflowOutputs(outputs_pb2.DeleteWorkflowOutputsRequest(workflow="wf"), timeout=5)
        assert deleted.deleted == 2
        await expect_code(
            h.stub.GetStepOutputs(outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5),
            grpc.StatusCode.NOT_FOUND,
        )

    run(tmp_path, test)


def with_inline_log(data: bytes, *, repository: str = "") -> outputs_pb2.ReportStepOutputsRequest:
    sent = report()
    sent.ClearField("log")
    header = artifacts_pb2.UploadHeader(
        workflow="wf", pod_name="wf-pod", artifact_name="main-logs", suffix=".log", repository=repository
    )
    sent.log_upload.CopyFrom(
        artifacts_pb2.PutArtifactRequest(header=header, data=data, sha256=hashlib.sha256(data).hexdigest())
    )
    return sent


def test_a_log_sent_with_the_report_is_stored_and_the_report_recorded_pointing_at_it(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        data = b"hello\nworld\n"
        sent = with_inline_log(data)
        assert (await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)).recorded is True
        stored = (await h.stub.GetStepOutputs(outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"))).report
        assert not stored.HasField("log_upload")
        assert stored.log.key == "wf/wf-pod/main-logs.log"
        assert (stored.log.size_bytes, stored.log.sha256, stored.log.archive) == (
            len(data),
            hashlib.sha256(data).hexdigest(),
            "none",
        )
        assert await h.read(stored.log.key) == data
        assert stored.phase == workflow_pb2.NODE_PHASE_SUCCEEDED
        [completed] = h.scheduler.completed
        assert completed.phase == workflow_pb2.NODE_PHASE_SUCCEEDED
        # The executor sends the same report again (a lost answer): nothing changes.
        again = await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)
        assert again.recorded is False

    run(tmp_path, test)


def test_a_log_that_cannot_be_stored_makes_the_step_an_error_with_its_outputs_kept(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = with_inline_log(b"hi\n", repository="elsewhere")
        assert (await h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5)).recorded is True
        stored = (await h.stub.GetStepOutputs(outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"))).report
        assert stored.phase == workflow_pb2.NODE_PHASE_ERROR
        assert stored.message == "saving the log failed: artifact repository 'elsewhere' not found"
        assert not stored.HasField("log") and not stored.HasField("log_upload")
        assert stored.outputs.result == "hello"
        [completed] = h.scheduler.completed
        assert completed.phase == workflow_pb2.NODE_PHASE_ERROR

    run(tmp_path, test)


def test_a_log_sent_with_the_report_is_checked_before_anything_is_stored(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        too_big = with_inline_log(b"x" * (INLINE_LOG_BYTES + 1))
        both = with_inline_log(b"hi\n")
        both.log.CopyFrom(workflow_pb2.StoredArtifact(key="wf/pod/main.log"))
        for sent, field in ((too_big, "log_upload.data"), (both, "log_upload")):
            error = await expect_code(
                h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5), grpc.StatusCode.INVALID_ARGUMENT
            )
            assert violated_fields(error) == [field]
        await expect_code(
            h.stub.GetStepOutputs(outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5),
            grpc.StatusCode.NOT_FOUND,
        )
        assert (await h.store.list()).objects == []
        assert h.scheduler.completed == []

    run(tmp_path, test)


def test_without_an_artifact_service_a_log_sent_with_the_report_is_unavailable(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        sent = with_inline_log(b"hi\n")
        await expect_code(
            h.stub.ReportStepOutputs(sent, metadata=token_for(sent), timeout=5), grpc.StatusCode.UNAVAILABLE
        )
        # Nothing half-done: the executor sends it again later.
        await expect_code(
            h.stub.GetStepOutputs(outputs_pb2.GetStepOutputsRequest(workflow="wf", node_id="wf-1"), timeout=5),
            grpc.StatusCode.NOT_FOUND,
        )
        assert h.scheduler.completed == []

    run(tmp_path, test, artifacts_configured=False)
