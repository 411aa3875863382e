"""The executor against real grpc.aio servers: fake Scheduler and Output services, the real ArtifactService.

Steps run for real: in the fork server, in their own mount namespace. The
fake services live in this module and are imported by test_local_runtime.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA, StepTokens
from treadle.errors import PermissionDenied
from treadle.executor.launch import StepLaunch
from treadle.executor.rpc import ServiceChannels
from treadle.executor.sandbox import SandboxMode
from treadle.executor.spawner import Spawner
from treadle.executor.step import StepOutcome, StepRunner
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import ServiceBinding, create_server
from treadle.outputs.v1 import outputs_pb2, outputs_pb2_grpc
from treadle.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from treadle.services.artifacts.repository import ArtifactRepository
from treadle.services.artifacts.service import SERVICE_NAME as ARTIFACT_SERVICE
from treadle.services.artifacts.service import ArtifactServicer
from treadle.services.artifacts.stores import MemoryStore
from treadle.services.outputs.artifacts_client import GrpcLogStore
from treadle.services.outputs.log_store import LogStore, NoLogStore, store_inline_log
from treadle.workflow.v1 import workflow_pb2

TOKENS = StepTokens(b"0123456789abcdef0123456789abcdef")
Key = tuple[str, str, int]
Context = grpc.aio.ServicerContext[Any, Any]
Phase = workflow_pb2.NodePhase


def _token(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == STEP_TOKEN_METADATA:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class FakeScheduler(scheduler_pb2_grpc.SchedulerServiceServicer):
    """GetStepContext only: serves the templates a test registered, checking the step token."""

    def __init__(self) -> None:
        self.templates: dict[Key, workflow_pb2.Template] = {}
        self.calls: list[Key] = []

    async def GetStepContext(
        self, request: scheduler_pb2.GetStepContextRequest, context: Context
    ) -> scheduler_pb2.GetStepContextResponse:
        key = (request.workflow, request.node_id, request.attempt)
        self.calls.append(key)
        try:
            TOKENS.check(_token(context), *key)
        except PermissionDenied as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        if key not in self.templates:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no step {key}")
        return scheduler_pb2.GetStepContextResponse(
            workflow=request.workflow,
            workflow_uid="uid-1",
            node_id=request.node_id,
            pod_name=f"{request.workflow}-{request.node_id}-{request.attempt}",
            attempt=request.attempt,
            template=self.templates[key],
        )


class FakeOutputs(outputs_pb2_grpc.OutputServiceServicer):
    """ReportStepOutputs only: records every report, checking the step token.

    A log sent with the report is stored as OutputService stores it: through the real ArtifactService,
    over gRPC (a split deployment's path), with the step's token.
    """

    def __init__(self) -> None:
        self.reports: dict[Key, outputs_pb2.ReportStepOutputsRequest] = {}
        self.log_store: LogStore = NoLogStore()
        self.inline_logs = 0

    async def ReportStepOutputs(
        self, request: outputs_pb2.ReportStepOutputsRequest, context: Context
    ) -> outputs_pb2.ReportStepOutputsResponse:
        key = (request.workflow, request.node_id, request.attempt)
        try:
            TOKENS.check(_token(context), *key)
        except PermissionDenied as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        if request.HasField("log_upload"):
            self.inline_logs += 1
            await store_inline_log(request, _token(context), self.log_store)
        self.reports[key] = request
        return outputs_pb2.ReportStepOutputsResponse(recorded=True)


@dataclass
class Services:
    address: str
    scheduler: FakeScheduler
    outputs: FakeOutputs
    store: MemoryStore
    # The Argo-shaped templates registered with step(), as a runtime that delivers the context sends them.
    templates: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _node_ids: int = field(default=0)

    def step(
        self,
        template: dict[str, Any],
        *,
        workflow: str = "wf",
        attempt: int = 0,
        deadline_seconds: float | None = None,
        token: str | None = None,
    ) -> StepLaunch:
        """Register an Argo-shaped template as a new step and return its launch."""
        self._node_ids += 1
        node_id = f"node-{self._node_ids}"
        argo = {"name": "t", **template}
        self.templates[(workflow, node_id, attempt)] = argo
        self.scheduler.templates[(workflow, node_id, attempt)] = json_format.ParseDict(argo, workflow_pb2.Template())
        return StepLaunch(
            workflow=workflow,
            node_id=node_id,
            attempt=attempt,
            token=TOKENS.issue(workflow, node_id, attempt) if token is None else token,
            scheduler=self.address,
            artifacts=self.address,
            outputs=self.address,
            deadline_seconds=deadline_seconds,
        )

    def report(self, launch: StepLaunch) -> outputs_pb2.ReportStepOutputsRequest:
        return self.outputs.reports[launch.key]

    async def read(self, key: str) -> bytes:
        reader = await self.store.get(key)
        async with reader:
            return b"".join([chunk async for chunk in reader])


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Services]:
    """The three services on one loopback server (port 0)."""
    # The fakes implement only what the executor calls; the generated bases answer UNIMPLEMENTED for the rest.
    scheduler, outputs, store = FakeScheduler(), FakeOutputs(), MemoryStore()  # type: ignore[abstract]
    bindings = [
        ServiceBinding(
            "treadle.scheduler.v1.SchedulerService",
            scheduler,
            scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server,
        ),
        ServiceBinding(
            "treadle.outputs.v1.OutputService", outputs, outputs_pb2_grpc.add_OutputServiceServicer_to_server
        ),
        ServiceBinding(
            ARTIFACT_SERVICE,
            ArtifactServicer(ArtifactRepository(store, tokens=TOKENS)),
            artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server,
        ),
    ]
    server = await create_server(bindings)
    channel = open_channel(server.address)
    outputs.log_store = GrpcLogStore(channel)
    try:
        yield Services(server.address, scheduler, outputs, store)
    finally:
        await channel.close()
        await server.server.stop(None)


@contextlib.asynccontextmanager
async def step_runner(steps_dir: Path, mode: SandboxMode = SandboxMode.MOUNT_NAMESPACE) -> AsyncIterator[StepRunner]:
    spawner, channels = Spawner(), ServiceChannels()
    try:
        yield StepRunner(channels, spawner, steps_dir, mode)
    finally:
        await spawner.close()
        await channels.close()


Body = Callable[[Services, StepRunner], Awaitable[None]]


def run(tmp_path: Path, body: Body, mode: SandboxMode = SandboxMode.MOUNT_NAMESPACE) -> None:
    async def main() -> None:
        async with serving() as services, step_runner(tmp_path / "steps", mode) as runner:
            await body(services, runner)

    asyncio.run(main())


def succeeded(outcome: StepOutcome, report: outputs_pb2.ReportStepOutputsRequest) -> None:
    assert outcome.reported, outcome.message
    assert report.phase == Phase.NODE_PHASE_SUCCEEDED, report.message


def parameters(report: outputs_pb2.ReportStepOutputsRequest) -> dict[str, str]:
    return {p.name: p.value for p in report.outputs.parameters}


def sh(script: str, **extra: Any) -> dict[str, Any]:
    return {"container": {"image": "busybox", "command": ["sh", "-c", script]}, **extra}


# ----------------------------------------------------------------------------- container and script steps


def test_container_step_reports_parameter_result_exit_code_and_log(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(
            sh(
                "printf 'hi\\n\\n' > /tmp/out.txt; echo hello; echo oops >&2",
                outputs={"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out.txt"}}]},
            )
        )
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        assert parameters(report) == {"out": "hi\n"}  # exactly one trailing newline trimmed, as Argo does
        assert report.outputs.result == "hello"
        assert report.outputs.exit_code == "0"
        assert report.log.key == "wf/wf-node-1-0/main-logs.log"
        assert report.log.archive == "none"
        log = await services.read(report.log.key)
        assert sorted(log.decode().splitlines()) == ["hello", "oops"]
        assert report.log.size_bytes == len(log)

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("command", "source"),
    [
        (["python3"], "import sys\nprint('py', sys.argv[1:])\n"),
        (["sh"], 'echo "sh $*"\n'),
    ],
)
def test_script_step(tmp_path: Path, command: list[str], source: str) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step({"script": {"image": "x", "command": command, "args": ["a", "b"], "source": source}})
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        assert report.outputs.result == ("py ['a', 'b']" if command == ["python3"] else "sh a b")

    run(tmp_path, body)


def test_command_sees_a_minimal_environment_without_the_token(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(
            {"container": {"image": "x", "command": ["env"], "env": [{"name": "GREETING", "value": "hej"}]}}
        )
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        env = dict(line.split("=", 1) for line in report.outputs.result.splitlines())
        assert env["GREETING"] == "hej"
        assert env["HOME"] == "/tmp"
        assert "PATH" in env
        assert set(env) <= {"GREETING", "HOME", "PATH", "LANG", "LC_ALL", "TZ"}
        assert launch.token not in report.outputs.result

    run(tmp_path, body)


def test_container_without_command_runs_its_args_in_its_working_dir(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step({"container": {"image": "x", "args": ["pwd"], "workingDir": "/tmp/work/dir"}})
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        assert report.outputs.result == "/tmp/work/dir"

    run(tmp_path, body)


def test_failing_command_is_failed_with_its_exit_code(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("echo partial; exit 3"))
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_FAILED
        assert report.message == "exit code 3"
        assert report.outputs.exit_code == "3"
        assert report.outputs.result == "partial"
        assert report.log.key

    run(tmp_path, body)


def test_missing_executable_is_an_error(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step({"container": {"image": "x", "command": ["no-such-program-treadle"]}})
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert "no-such-program-treadle: executable file not found in $PATH" in report.message

    run(tmp_path, body)


# ----------------------------------------------------------------------------- output parameters


def test_missing_output_parameter_uses_its_default(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        param = {"name": "p", "valueFrom": {"path": "/tmp/nothing", "default": "fallback"}}
        launch = services.step(sh("true", outputs={"parameters": [param]}))
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        assert parameters(report) == {"p": "fallback"}

    run(tmp_path, body)


def test_missing_output_parameter_without_default_is_an_error(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        param = {"name": "p", "valueFrom": {"path": "/tmp/nothing"}}
        launch = services.step(sh("echo done", outputs={"parameters": [param]}))
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert report.message == "output parameter 'p': cannot read /tmp/nothing: No such file or directory"
        assert report.outputs.result == "done"  # what was collected is still reported
        assert report.log.key

    run(tmp_path, body)


# ----------------------------------------------------------------------------- artifacts


def test_artifacts_round_trip_as_tgz_dir_none_file_and_raw(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        producer = services.step(
            sh(
                "mkdir -p /tmp/dir/sub && echo a > /tmp/dir/a.txt && echo b > /tmp/dir/sub/b.txt && echo plain > /tmp/f",
                outputs={
                    "artifacts": [
                        {"name": "dir", "path": "/tmp/dir"},
                        {"name": "file", "path": "/tmp/f", "archive": {"none": {}}},
                    ]
                },
            )
        )
        succeeded(await runner.run(producer), services.report(producer))
        stored = {a.name: a.stored for a in services.report(producer).outputs.artifacts}
        assert stored["dir"].key == "wf/wf-node-1-0/dir.tgz"
        assert stored["dir"].archive == "tgz"
        assert stored["file"].key == "wf/wf-node-1-0/file"
        assert stored["file"].archive == "none"
        assert await services.read(stored["file"].key) == b"plain\n"
        with tarfile.open(fileobj=io.BytesIO(await services.read(stored["dir"].key))) as tar:
            assert sorted(tar.getnames()) == ["dir", "dir/a.txt", "dir/sub", "dir/sub/b.txt"]

        inputs = [
            {"name": "d", "path": "/tmp/in/d", "stored": json_format.MessageToDict(stored["dir"])},
            {"name": "f", "path": "/tmp/in/f", "mode": 0o700, "stored": json_format.MessageToDict(stored["file"])},
            {"name": "r", "path": "/tmp/raw.txt", "raw": {"data": "raw text"}},
        ]
        consumer = services.step(
            sh(
                "cat /tmp/in/d/a.txt /tmp/in/d/sub/b.txt /tmp/in/f /tmp/raw.txt; stat -c %a /tmp/in/f",
                inputs={"artifacts": inputs},
            )
        )
        succeeded(await runner.run(consumer), services.report(consumer))
        assert services.report(consumer).outputs.result == "a\nb\nplain\nraw text700"

    run(tmp_path, body)


def test_missing_input_artifact_reports_an_error_naming_it_and_its_source(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        inputs = [{"name": "data", "path": "/tmp/data", "stored": {"key": "wf/gone/data.tgz", "archive": "tgz"}}]
        launch = services.step(sh("true", inputs={"artifacts": inputs}))
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert report.message == "input artifact 'data' from artifact wf/gone/data.tgz: not found"

    run(tmp_path, body)


def test_optional_artifacts_may_be_missing(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        inputs = [
            {"name": "unsupplied", "path": "/tmp/a", "optional": True},
            {"name": "gone", "path": "/tmp/b", "optional": True, "stored": {"key": "wf/gone/b", "archive": "none"}},
        ]
        outputs = [{"name": "never", "path": "/tmp/never", "optional": True}]
        launch = services.step(sh("ls /tmp", inputs={"artifacts": inputs}, outputs={"artifacts": outputs}))
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        assert report.outputs.result == ""
        assert list(report.outputs.artifacts) == []

    run(tmp_path, body)


def test_missing_output_artifact_is_an_error_naming_it(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("true", outputs={"artifacts": [{"name": "out", "path": "/tmp/out"}]}))
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert report.message == "output artifact 'out': /tmp/out does not exist"

    run(tmp_path, body)


# ----------------------------------------------------------------------------- deadline, isolation, cleanup


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie waiting for init is dead
    except FileNotFoundError:
        return True


def test_deadline_kills_the_command_and_its_children(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("sleep 30 & echo $!; wait"), deadline_seconds=0.5)
        started = time.monotonic()
        outcome = await runner.run(launch)
        assert time.monotonic() - started < 5
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_FAILED
        assert report.message == "step exceeded its deadline of 0.5 seconds"
        assert report.outputs.exit_code == "137"
        child = int(report.outputs.result)
        for _ in range(100):
            if gone(child):
                break
            await asyncio.sleep(0.01)
        assert gone(child), f"the command's child {child} survived"

    run(tmp_path, body)


def test_parallel_steps_have_private_tmp_and_leave_nothing_behind(tmp_path: Path) -> None:
    name = f"treadle-test-{uuid.uuid4().hex}.txt"

    async def body(services: Services, runner: StepRunner) -> None:
        launches = [
            services.step(
                sh(
                    f"cat /tmp/in > /tmp/{name}; sleep 0.3; cat /tmp/{name}",
                    inputs={"artifacts": [{"name": "in", "path": "/tmp/in", "raw": {"data": value}}]},
                    outputs={"parameters": [{"name": "out", "valueFrom": {"path": f"/tmp/{name}"}}]},
                )
            )
            for value in ("first", "second")
        ]
        await asyncio.gather(*(runner.run(launch) for launch in launches))
        for launch, value in zip(launches, ("first", "second"), strict=True):
            report = services.report(launch)
            assert report.phase == Phase.NODE_PHASE_SUCCEEDED, report.message
            assert report.outputs.result == value
            assert parameters(report) == {"out": value}
        assert not os.path.exists(f"/tmp/{name}")
        assert list((tmp_path / "steps" / "wf").iterdir()) == []  # every step directory removed

    run(tmp_path, body)


def test_user_namespace_sandbox_works_too(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("echo x > /tmp/x && cat /tmp/x && ls /tmp"))
        outcome = await runner.run(launch)
        succeeded(outcome, services.report(launch))
        assert services.report(launch).outputs.result == "x\nx"

    run(tmp_path, body, mode=SandboxMode.USER_NAMESPACE)


# ----------------------------------------------------------------------------- tokens and the one-shot entry


def test_a_wrong_token_is_refused_and_nothing_is_reported(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("echo never"), token=TOKENS.issue("wf", "another-node", 0))
        outcome = await runner.run(launch)
        assert not outcome.reported
        assert outcome.message.startswith("GetStepContext: permission denied: step token is for another step")
        assert "ReportStepOutputs: permission denied" in outcome.message
        assert services.outputs.reports == {}

    run(tmp_path, body)


def test_one_shot_entry_runs_and_reports_a_step(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("echo one-shot"))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "treadle.executor", "run",
            "--workflow", launch.workflow, "--node-id", launch.node_id, "--attempt", str(launch.attempt),
            "--scheduler", services.address, "--artifacts", services.address, "--outputs", services.address,
            env={**os.environ, "TREADLE_STEP_TOKEN": launch.token},
            stderr=subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        succeeded(StepOutcome(reported=True), services.report(launch))
        assert services.report(launch).outputs.result == "one-shot"

    run(tmp_path, body)


# ----------------------------------------------------------------------------- a context delivered with the launch


def delivered(services: Services, launch: StepLaunch, **context: Any) -> StepLaunch:
    """The launch as the local runtime sends it: with the step's context, so init skips GetStepContext."""
    fields = {"workflow_uid": "uid-9", "pod_name": "delivered-pod", "template": services.templates[launch.key]}
    return dataclasses.replace(launch, context={**fields, **context})


def test_a_delivered_context_is_used_and_the_scheduler_is_not_asked(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = delivered(services, services.step(sh("echo from-the-launch")))
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        assert report.outputs.result == "from-the-launch"
        assert services.scheduler.calls == []
        assert report.log.key == "wf/delivered-pod/main-logs.log"  # the delivered pod name, not the scheduler's

    run(tmp_path, body)


def test_a_delivered_artifact_repository_is_the_one_uploads_go_to(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = delivered(services, services.step(sh("echo hi")), artifact_repository="elsewhere")
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert report.message == "saving the log failed: artifact repository 'elsewhere' not found"

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ({"name": "t"}, "template 't' has neither a container nor a script to run"),
        (
            {"name": "t", "container": {"image": "x", "command": "echo"}},
            "container.command: expected a list, got a string",
        ),
    ],
)
def test_an_invalid_delivered_template_ends_in_an_error_report(
    tmp_path: Path, template: dict[str, Any], problem: str
) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        launch = delivered(services, services.step(sh("echo never")), template=template)
        outcome = await asyncio.wait_for(runner.run(launch), 10)
        report = services.report(launch)
        assert outcome.reported, outcome.message
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert report.message.endswith(problem), report.message
        assert not report.outputs.HasField("result")
        assert services.scheduler.calls == []

    run(tmp_path, body)


# ----------------------------------------------------------------------------- large values


def test_large_result_and_parameter_are_reported_as_blobs_holding_the_exact_text(tmp_path: Path) -> None:
    async def body(services: Services, runner: StepRunner) -> None:
        script = "head -c 300000 /dev/zero | tr '\\0' p > /tmp/p; printf 'r%.0s' $(seq 300000); echo"
        outputs = {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p"}}]}
        launch = services.step(sh(script, outputs=outputs))
        outcome = await runner.run(launch)
        report = services.report(launch)
        succeeded(outcome, report)
        result_ref, value_ref = report.outputs.result_ref, report.outputs.parameters[0].value_ref
        assert not report.outputs.HasField("result") and not report.outputs.parameters[0].HasField("value")
        assert (result_ref.key, result_ref.archive) == ("wf/wf-node-1-0/outputs.result.txt", "none")
        assert await services.read(result_ref.key) == b"r" * 300_000  # one trailing newline trimmed
        assert await services.read(value_ref.key) == b"p" * 300_000

    run(tmp_path, body)


def test_a_small_log_goes_with_the_report_and_a_larger_one_through_the_artifact_service(tmp_path: Path) -> None:
    from treadle.services.outputs.log_store import INLINE_LOG_BYTES

    async def body(services: Services, runner: StepRunner) -> None:
        small = services.step(sh("echo small"))
        large = services.step(sh(f"head -c {INLINE_LOG_BYTES + 1} /dev/zero | tr '\\0' L >&2"))
        for launch in (small, large):
            succeeded(await runner.run(launch), services.report(launch))
        # Only the small log came inline (OutputService stored it); the large one the executor stored itself.
        assert services.outputs.inline_logs == 1
        assert await services.read(services.report(small).log.key) == b"small\n"
        large_log = services.report(large).log
        assert large_log.size_bytes == INLINE_LOG_BYTES + 1
        assert await services.read(large_log.key) == b"L" * (INLINE_LOG_BYTES + 1)

    run(tmp_path, body)


def test_a_result_longer_than_a_value_may_be_fails_the_step_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from treadle.executor import capture
    from treadle.services.artifacts import values

    monkeypatch.setattr(values, "MAX_VALUE_BYTES", 1000)
    monkeypatch.setattr(capture, "RESULT_LIMIT_BYTES", 1001)

    async def body(services: Services, runner: StepRunner) -> None:
        launch = services.step(sh("head -c 5000 /dev/zero | tr '\\0' x"))
        outcome = await runner.run(launch)
        report = services.report(launch)
        assert outcome.reported
        assert report.phase == Phase.NODE_PHASE_ERROR
        assert report.message.startswith("the result (stdout) is longer than 1000 bytes")
        assert not report.outputs.HasField("result")
        assert len(await services.read(report.log.key)) == 5001  # the log keeps everything

    run(tmp_path, body)
