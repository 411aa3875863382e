"""LocalRuntime end to end: the real executor host process, fake Scheduler/Output services, the real ArtifactService."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from treadle.config import ServiceAddresses
from treadle.executor.host import MAX_REQUEST_BYTES
from treadle.executor.launch import StepLaunch
from treadle.services.scheduler.runtimes.base import LaunchSpec, StepExit
from treadle.services.scheduler.runtimes.local import LocalRuntime
from treadle.workflow.v1 import workflow_pb2

# The fake services live in test_executor.py; pytest's importlib mode does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from test_executor import Services, gone, serving, sh

Key = tuple[str, str, int]


@dataclass
class Exits:
    """Collects exit callbacks; `wait_for` blocks until an attempt's exit arrived."""

    seen: list[StepExit] = field(default_factory=list)
    arrived: dict[Key, asyncio.Event] = field(default_factory=dict)

    async def __call__(self, step_exit: StepExit) -> None:
        self.seen.append(step_exit)
        self._event((step_exit.workflow, step_exit.node_id, step_exit.attempt)).set()

    async def wait_for(self, key: Key, timeout: float = 10.0) -> StepExit:
        await asyncio.wait_for(self._event(key).wait(), timeout)
        return next(e for e in reversed(self.seen) if (e.workflow, e.node_id, e.attempt) == key)

    def _event(self, key: Key) -> asyncio.Event:
        return self.arrived.setdefault(key, asyncio.Event())


def spec_of(services: Services, launch: StepLaunch, *, artifact_repository: str = "") -> LaunchSpec:
    """The LaunchSpec the scheduler would make: the local runtime hands its template to the executor."""
    return LaunchSpec(
        workflow=launch.workflow,
        workflow_uid="uid-1",
        node_id=launch.node_id,
        pod_name=f"{launch.workflow}-{launch.node_id}",
        attempt=launch.attempt,
        token=launch.token,
        services=ServiceAddresses.all_at(launch.scheduler),
        template=services.templates[launch.key],
        artifact_repository=artifact_repository,
        deadline_seconds=launch.deadline_seconds,
    )


def marker_dir() -> Path:
    """A directory outside /tmp (which a step sees as its own private one), for a step to leave a sign in."""
    return Path(tempfile.mkdtemp(dir="/var/tmp"))


@asynccontextmanager
async def local_runtime(steps_dir: Path) -> AsyncIterator[tuple[LocalRuntime, Exits]]:
    runtime, exits = LocalRuntime(steps_dir), Exits()
    await runtime.start(exits)
    try:
        yield runtime, exits
    finally:
        await runtime.close()


Body = Callable[[Services, LocalRuntime, Exits], Awaitable[None]]


def run(tmp_path: Path, body: Body) -> None:
    async def main() -> None:
        async with serving() as services, local_runtime(tmp_path / "steps") as (runtime, exits):
            await body(services, runtime, exits)

    asyncio.run(main())


def test_steps_run_through_the_host_and_report(tmp_path: Path) -> None:
    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        first = services.step(sh("echo one"))
        second = services.step(sh("exit 4"))
        for launch in (first, second):
            await runtime.launch(spec_of(services, launch))
        await runtime.launch(spec_of(services, first))  # a duplicate of a running attempt does nothing
        assert await exits.wait_for(first.key) == StepExit(*first.key, reported=True)
        assert await exits.wait_for(second.key) == StepExit(*second.key, reported=True)
        assert services.report(first).outputs.result == "one"
        assert services.report(second).phase == workflow_pb2.NODE_PHASE_FAILED
        assert len(exits.seen) == 2
        # The context came with the launch: the executor never asked the scheduler for it, and used the
        # delivered pod name (not the fake scheduler's "wf-node-1-0") for the log's key.
        assert services.scheduler.calls == []
        assert services.report(first).log.key == "wf/wf-node-1/main-logs.log"

    run(tmp_path, body)


def test_cancel_kills_a_running_step(tmp_path: Path) -> None:
    signs = marker_dir()

    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        launch = services.step(sh(f"touch {signs}/started; sleep 30"))
        await runtime.launch(spec_of(services, launch))
        await _until((signs / "started").exists)
        started = time.monotonic()
        await runtime.cancel(*launch.key, reason="workflow deleted")
        step_exit = await exits.wait_for(launch.key)
        assert time.monotonic() - started < 3
        assert step_exit == StepExit(*launch.key, reported=False, message="cancelled: workflow deleted")
        await runtime.cancel(*launch.key, reason="again")  # unknown attempts are ignored

    try:
        run(tmp_path, body)
    finally:
        shutil.rmtree(signs, ignore_errors=True)


def test_a_dead_host_fails_its_steps_and_the_next_launch_restarts_it(tmp_path: Path) -> None:
    signs = marker_dir()

    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        sleeper = services.step(sh(f"touch {signs}/started; sleep 30"))
        await runtime.launch(spec_of(services, sleeper))
        await _until((signs / "started").exists)
        host = runtime._host
        assert host is not None
        host.process.kill()
        step_exit = await exits.wait_for(sleeper.key)
        assert not step_exit.reported
        assert step_exit.message == "the executor host exited (code -9) while the step ran"

        after = services.step(sh("echo back"))
        await runtime.launch(spec_of(services, after))
        assert (await exits.wait_for(after.key)).reported
        assert runtime._host is not host
        assert services.report(after).outputs.result == "back"

    try:
        run(tmp_path, body)
    finally:
        shutil.rmtree(signs, ignore_errors=True)


def test_cleanup_removes_the_workflows_directory(tmp_path: Path) -> None:
    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        launch = services.step(sh("true"), workflow="wf-clean")
        await runtime.launch(spec_of(services, launch))
        await exits.wait_for(launch.key)
        assert (tmp_path / "steps" / "wf-clean").is_dir()
        await runtime.cleanup("wf-clean")
        assert not (tmp_path / "steps" / "wf-clean").exists()
        await runtime.cleanup("never-ran")

    run(tmp_path, body)


def test_an_invalid_delivered_template_is_reported_as_an_error_not_a_hang(tmp_path: Path) -> None:
    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        launch = services.step(sh("echo never"))
        spec = dataclasses.replace(spec_of(services, launch), template={"name": "t"})
        await runtime.launch(spec)
        assert await exits.wait_for(launch.key) == StepExit(*launch.key, reported=True)
        report = services.report(launch)
        assert report.phase == workflow_pb2.NODE_PHASE_ERROR
        assert report.message == "template 't' has neither a container nor a script to run"
        assert services.scheduler.calls == []
        # The host lives on: the next step runs.
        after = services.step(sh("echo next"))
        await runtime.launch(spec_of(services, after))
        assert (await exits.wait_for(after.key)).reported
        assert services.report(after).outputs.result == "next"

    run(tmp_path, body)


def test_the_launch_line_carries_the_artifact_repository(tmp_path: Path) -> None:
    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        launch = services.step(sh("echo hi"))
        await runtime.launch(spec_of(services, launch, artifact_repository="elsewhere"))
        assert await exits.wait_for(launch.key) == StepExit(*launch.key, reported=True)
        report = services.report(launch)
        assert report.phase == workflow_pb2.NODE_PHASE_ERROR
        # The fake ArtifactService has only the default repository: the executor asked for the delivered one.
        assert report.message == "saving the log failed: artifact repository 'elsewhere' not found"

    run(tmp_path, body)


def test_a_step_with_a_template_larger_than_a_launch_line_runs_and_spares_the_others(tmp_path: Path) -> None:
    """A resolved template may be large (parameters substituted into a script): it must not kill the host."""
    signs = marker_dir()

    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        neighbour = services.step(sh(f"touch {signs}/started; sleep 1; echo alive"))
        await runtime.launch(spec_of(services, neighbour))
        await _until((signs / "started").exists)
        value = "x" * (MAX_REQUEST_BYTES + 1024)
        big = services.step(sh("echo big", inputs={"parameters": [{"name": "p", "value": value}]}))
        await runtime.launch(spec_of(services, big))
        for launch, result in ((big, "big"), (neighbour, "alive")):
            step_exit = await exits.wait_for(launch.key, timeout=30)
            assert step_exit == StepExit(*launch.key, reported=True), step_exit.message
            assert services.report(launch).outputs.result == result

    try:
        run(tmp_path, body)
    finally:
        shutil.rmtree(signs, ignore_errors=True)


def test_close_stops_the_host_and_its_steps(tmp_path: Path) -> None:
    pid_file = marker_dir() / "pid"

    async def main() -> None:
        async with serving() as services:
            runtime, exits = LocalRuntime(tmp_path / "steps"), Exits()
            await runtime.start(exits)
            launch = services.step(sh(f"echo $$ > {pid_file}; exec sleep 30"))
            await runtime.launch(spec_of(services, launch))
            await _until(pid_file.exists)
            host = runtime._host
            assert host is not None
            await asyncio.wait_for(runtime.close(), 5)
            assert host.process.returncode is not None
            assert exits.seen == []  # no callbacks after close: the scheduler decides on restart
            command = int(pid_file.read_text())
            await _until(lambda: gone(command), timeout=5)

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(pid_file.parent, ignore_errors=True)


def test_per_step_overhead_through_the_host(tmp_path: Path) -> None:
    """A trivial step end to end: launch line (with its context) -> spawn -> log upload -> report -> exit event."""

    async def body(services: Services, runtime: LocalRuntime, exits: Exits) -> None:
        warm = services.step(sh("echo 1"))
        await runtime.launch(spec_of(services, warm))
        await exits.wait_for(warm.key)  # the host is started and its channels are open

        samples = []
        for _ in range(40):
            launch = services.step(sh("echo 1"))
            started = time.perf_counter()
            await runtime.launch(spec_of(services, launch))
            assert (await exits.wait_for(launch.key)).reported
            samples.append(time.perf_counter() - started)
        sequential_ms = statistics.median(samples) * 1000

        batch = [services.step(sh("echo 1")) for _ in range(100)]
        started = time.perf_counter()
        for launch in batch:
            await runtime.launch(spec_of(services, launch))
        for launch in batch:
            assert (await exits.wait_for(launch.key, timeout=30)).reported
        concurrent_ms = (time.perf_counter() - started) / len(batch) * 1000
        print(
            f"per-step latency of `sh -c 'echo 1'` through the host: median {sequential_ms:.1f} ms sequential, "
            f"{concurrent_ms:.1f} ms per step with 100 launched at once"
        )
        assert sequential_ms < 100  # ~10 ms on an idle 2-core machine; generous for a loaded CI host

    run(tmp_path, body)


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_launches_beyond_the_cap_wait_their_turn(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving() as services:
            runtime, exits = LocalRuntime(tmp_path / "steps", max_running=2), Exits()
            await runtime.start(exits)
            launches = [services.step(sh("sleep 0.3"), workflow="wf-cap") for _ in range(5)]
            for launch in launches:
                await runtime.launch(spec_of(services, launch))
            assert len(runtime._attempts) == 2 and len(runtime._waiting) == 3
            for launch in launches:
                await exits.wait_for(launch.key)
            assert not runtime._waiting and not runtime._attempts
            await runtime.close()

    asyncio.run(main())
