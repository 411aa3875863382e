"""The executor host: one long-lived process that runs many steps concurrently.

    python -m treadle.executor.host --steps-dir DIR [--sandbox auto|mount-namespace|user-namespace|none]

Starting a Python interpreter costs ~70 ms, far above the per-step budget, so
the local runtime starts this process once and sends it steps. It speaks
`treadle.executor.protocol` (JSON lines) on stdin and stdout, keeps one gRPC
channel per service address, and exits when stdin closes (or on SIGTERM),
killing the steps it still runs. A second launch of a running attempt is
ignored. Logs go to stderr; stdout carries nothing but events.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from treadle.executor.launch import StepLaunch
from treadle.executor.protocol import CancelRequest, ExitEvent, LaunchRequest, parse_request
from treadle.executor.rpc import ServiceChannels
from treadle.executor.sandbox import SandboxMode, preferred_mode
from treadle.executor.spawner import Spawner
from treadle.executor.step import StepOutcome, StepRunner
from treadle.telemetry.logs import configure_logging
from treadle.telemetry.providers import configure_telemetry

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
SANDBOX_CHOICES = ("auto", *(mode.value for mode in SandboxMode))

Key = tuple[str, str, int]
# service.name of the executor's spans and logs, unless OTEL_SERVICE_NAME says otherwise.
EXECUTOR_SERVICE_NAME = "treadle-executor"


class ExecutorHost:
    """Runs launched steps as tasks and emits one exit event per launched attempt."""

    def __init__(self, runner: StepRunner, emit: Callable[[ExitEvent], None]) -> None:
        self._runner = runner
        self._emit = emit
        self._tasks: dict[Key, asyncio.Task[StepOutcome]] = {}
        self._cancel_reasons: dict[Key, str] = {}

    @property
    def running(self) -> int:
        return len(self._tasks)

    def handle(self, request: LaunchRequest | CancelRequest) -> None:
        if isinstance(request, LaunchRequest):
            self.launch(request.launch)
        else:
            self.cancel(request.key, request.reason)

    def launch(self, launch: StepLaunch) -> None:
        if launch.key in self._tasks:
            log.debug("step %s runs already; launch ignored", launch.describe())
            return
        task = asyncio.create_task(self._runner.run(launch), name=f"step {launch.describe()}")
        self._tasks[launch.key] = task
        task.add_done_callback(lambda done: self._finished(launch, done))

    def cancel(self, key: Key, reason: str) -> None:
        task = self._tasks.get(key)
        if task is not None and not task.done():
            self._cancel_reasons[key] = reason
            task.cancel()

    async def stop(self) -> None:
        """Cancel every running step (their commands are killed) and wait for them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _finished(self, launch: StepLaunch, task: asyncio.Task[StepOutcome]) -> None:
        self._tasks.pop(launch.key, None)
        reason = self._cancel_reasons.pop(launch.key, None)
        if task.cancelled():
            outcome = StepOutcome(reported=False, message=f"cancelled: {reason}" if reason else "cancelled")
        elif task.exception() is not None:
            error = task.exception()
            log.error("step %s crashed", launch.describe(), exc_info=error)
            outcome = StepOutcome(reported=False, message=f"executor error: {error!r}")
        else:
            outcome = task.result()
        self._emit(ExitEvent(launch.workflow, launch.node_id, launch.attempt, outcome.reported, outcome.message))


async def probe_sandbox(spawner: Spawner, mode: SandboxMode, scratch: Path) -> str | None:
    """None when mode works here (tried with `true`), else why not."""
    private_tmp = scratch / f".probe-{os.getpid()}"
    private_tmp.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    try:
        process = await spawner.spawn(
            ["true"],
            mode=mode,
            private_tmp=str(private_tmp),
            cwd="/",
            env={"PATH": os.defpath},
            stdout_fd=write_end,
            stderr_fd=os.dup(write_end),
        )
        code = await process.wait()
        return None if code == 0 else f"the probe exited with code {code}"
    except Exception as exc:
        return str(exc)
    finally:
        os.close(read_end)
        private_tmp.rmdir()


async def choose_sandbox(choice: str, spawner: Spawner, scratch: Path) -> SandboxMode:
    """The sandbox to run steps in. "auto" falls back to none, with a warning, when namespaces are not allowed."""
    mode = preferred_mode() if choice == "auto" else SandboxMode(choice)
    problem = None if mode is SandboxMode.NONE else await probe_sandbox(spawner, mode, scratch)
    if problem is None:
        return mode
    if choice != "auto":
        raise SystemExit(f"executor host: sandbox {mode.value} does not work here: {problem}")
    log.warning("sandbox %s does not work here (%s); steps run without isolation", mode.value, problem)
    return SandboxMode.NONE


async def serve(steps_dir: Path, sandbox: str) -> None:
    loop = asyncio.get_running_loop()
    # Events get a private copy of stdout; fd 1 then points at stderr, so a stray print cannot corrupt them.
    events_fd = os.dup(1)
    os.dup2(2, 1)
    events, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(events_fd, "wb", buffering=0))
    requests = asyncio.StreamReader(limit=MAX_REQUEST_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(requests), os.fdopen(0, "rb", buffering=0))

    steps_dir.mkdir(parents=True, exist_ok=True)
    spawner = Spawner()
    channels = ServiceChannels()
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    host: ExecutorHost | None = None
    try:
        mode = await choose_sandbox(sandbox, spawner, steps_dir)
        log.info("executor host %d ready: steps in %s, sandbox %s", os.getpid(), steps_dir, mode.value)
        host = ExecutorHost(StepRunner(channels, spawner, steps_dir, mode), lambda event: events.write(event.encode()))
        reading = asyncio.create_task(_read_requests(requests, host))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (reading, stopping):
            task.cancel()
    finally:
        if host is not None:
            await host.stop()
        await spawner.close()
        await channels.close()
        events.close()


async def _read_requests(requests: asyncio.StreamReader, host: ExecutorHost) -> None:
    while True:
        try:
            line = await requests.readline()
        except ValueError as exc:  # longer than MAX_REQUEST_BYTES: dropped, and the host goes on
            log.error("ignoring a request longer than %d bytes: %s", MAX_REQUEST_BYTES, exc)
            continue
        if not line:
            break
        if not line.strip():
            continue
        try:
            request = parse_request(line)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("ignoring a malformed request: %s: %s", type(exc).__name__, exc)
            continue
        host.handle(request)
    log.info("stdin closed; stopping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treadle.executor.host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps-dir", type=Path, required=True, help="where the steps' directories are made")
    parser.add_argument("--sandbox", choices=SANDBOX_CHOICES, default="auto", help="how steps are isolated")
    args = parser.parse_args(argv)
    configure_logging(os.environ.get("TREADLE_LOG_LEVEL", "INFO"), service=EXECUTOR_SERVICE_NAME)
    telemetry = configure_telemetry(EXECUTOR_SERVICE_NAME)  # OTEL_* inherited from the scheduler
    try:
        asyncio.run(serve(args.steps_dir.resolve(), args.sandbox))
    finally:
        telemetry.shutdown()  # export the spans still batched
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
