"""The local runtime: steps run on this machine, in one long-lived executor host process.

The host (``python -m treadle.executor.host``) is started on the first launch
and runs every step concurrently; launches and cancels go to it as JSON lines,
exit events come back (`treadle.executor.protocol`). If the host dies, every
attempt it was running gets an exit with reported=False, and the next launch
starts a new host. `close` stops the host without exit callbacks: the attempts
it was running are for the scheduler to resume or fail when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import shutil
import sys
from pathlib import Path

from treadle.executor.layout import workflow_dir
from treadle.executor.protocol import ExitEvent, cancel_line, launch_line
from treadle.services.scheduler.runtimes.base import DaemonCallback, ExitCallback, LaunchSpec, StepExit
from treadle.services.scheduler.runtimes.local_limits import unsupported_on_local

log = logging.getLogger(__name__)

Key = tuple[str, str, int]

# How long close() lets the host stop its steps before killing it.
STOP_GRACE_SECONDS = 10.0
# Steps that run at once; more wait their turn. Enough to keep two cores busy with short steps.
DEFAULT_MAX_RUNNING = int(os.environ.get("TREADLE_MAX_RUNNING_STEPS", "32"))
# How long a finished workflow's last executor may take to exit before it is stopped.
CLEANUP_GRACE_SECONDS = 2.0
_EVENT_LINE_LIMIT = 1024 * 1024
# Launch lines up to this size carry the step's context; a larger one is sent without it.
MAX_CONTEXT_LINE_BYTES = 1024 * 1024


class _Host:
    """One executor host process and the attempts it runs."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.running: set[Key] = set()
        self.dead = False
        self.reader: asyncio.Task[None] | None = None

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.process.stdin is not None
        return self.process.stdin

    async def send(self, line: bytes) -> None:
        """Write a request. A host that died meanwhile is noticed by the reader, not here."""
        try:
            self.stdin.write(line)
            await self.stdin.drain()
        except (BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
            log.debug("executor host %d did not take a request: %s", self.process.pid, exc)


class LocalRuntime:
    name = "local"
    # The launch carries the step's context: the executor host need not call GetStepContext.
    delivers_context = True

    def __init__(
        self,
        steps_dir: Path,
        *,
        sandbox: str = "auto",
        python: str = sys.executable,
        max_running: int = DEFAULT_MAX_RUNNING,
    ) -> None:
        self._steps_dir = steps_dir
        self._sandbox = sandbox
        self._python = python
        self._on_exit: ExitCallback | None = None
        self._host: _Host | None = None
        self._host_lock = asyncio.Lock()
        self._attempts: dict[Key, _Host | None] = {}
        # Launches beyond max_running wait here, oldest first, so a wide fan-out does not
        # start thousands of processes on a small machine at once.
        self._max_running = max(1, max_running)
        self._waiting: dict[Key, LaunchSpec] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self, on_exit: ExitCallback, on_daemoned: DaemonCallback | None = None) -> None:
        self._on_exit = on_exit  # daemon steps never start here (see local_limits), so on_daemoned goes unused
        self._closed = False

    async def launch(self, spec: LaunchSpec) -> None:
        key = (spec.workflow, spec.node_id, spec.attempt)
        if key in self._attempts or key in self._waiting:
            return
        problem = unsupported_on_local(spec.template)
        if problem is not None:
            self._refuse(key, problem)
            return
        if len(self._attempts) >= self._max_running:
            self._waiting[key] = spec
            return
        await self._start(key, spec)

    def _refuse(self, key: Key, message: str) -> None:
        """End the attempt with phase Error at once; from a task, as launch is called while the scheduler commits."""
        task = asyncio.get_running_loop().create_task(self._notify(StepExit(*key, reported=False, message=message)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start(self, key: Key, spec: LaunchSpec) -> None:
        self._attempts[key] = None  # reserved while the host starts: a concurrent duplicate returns above
        try:
            host = await self._live_host()
        except BaseException:
            del self._attempts[key]
            raise
        host.running.add(key)
        self._attempts[key] = host
        line = launch_line(spec)
        if len(line) > MAX_CONTEXT_LINE_BYTES:
            # A template swollen by large substituted values: the executor fetches it with GetStepContext.
            line = launch_line(spec, with_context=False)
        await host.send(line)

    async def cancel(self, workflow: str, node_id: str, attempt: int, reason: str) -> None:
        if self._waiting.pop((workflow, node_id, attempt), None) is not None:
            return  # never started: nothing to stop, and the scheduler already decided its outcome
        host = self._attempts.get((workflow, node_id, attempt))
        if host is not None and not host.dead:
            await host.send(cancel_line(workflow, node_id, attempt, reason))

    async def cleanup(self, workflow: str) -> None:
        """Forget a finished workflow's steps. Runs in the background: the last step's executor
        may still be winding down after its report, and gets a moment to exit by itself."""
        for key in [key for key in self._waiting if key[0] == workflow]:
            del self._waiting[key]
        finishing = {key for key in self._attempts if key[0] == workflow}
        if not finishing:
            await asyncio.to_thread(shutil.rmtree, workflow_dir(self._steps_dir, workflow), True)
            return
        task = asyncio.get_running_loop().create_task(self._cleanup_when_quiet(workflow, finishing))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cleanup_when_quiet(self, workflow: str, finishing: set[Key]) -> None:
        """Wait for the steps that were winding down, stop those that do not end, then remove the
        workflow's directory unless a retry has started new steps of it meanwhile."""
        deadline = asyncio.get_running_loop().time() + CLEANUP_GRACE_SECONDS
        while finishing & self._attempts.keys() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for w, node_id, attempt in finishing & self._attempts.keys():
            await self.cancel(w, node_id, attempt, "the workflow is being cleaned up")
        if not any(key[0] == workflow for key in self._attempts):
            await asyncio.to_thread(shutil.rmtree, workflow_dir(self._steps_dir, workflow), True)

    async def _start_waiting(self) -> None:
        while self._waiting and len(self._attempts) < self._max_running and not self._closed:
            key = next(iter(self._waiting))
            await self._start(key, self._waiting.pop(key))

    async def close(self) -> None:
        self._closed = True
        host, self._host = self._host, None
        self._attempts.clear()
        self._waiting.clear()
        for task in list(self._background):
            task.cancel()
        if host is None or host.dead:
            return
        host.stdin.close()  # the host stops its steps and exits when its stdin closes
        try:
            await asyncio.wait_for(host.process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("executor host %d did not stop in time; killing it", host.process.pid)
            with contextlib.suppress(ProcessLookupError):
                host.process.kill()
            await host.process.wait()
        if host.reader is not None:
            await host.reader

    async def _live_host(self) -> _Host:
        async with self._host_lock:
            if self._host is None or self._host.dead:
                self._steps_dir.mkdir(parents=True, exist_ok=True)
                process = await asyncio.create_subprocess_exec(
                    self._python,
                    "-m",
                    "treadle.executor.host",
                    "--steps-dir",
                    str(self._steps_dir),
                    "--sandbox",
                    self._sandbox,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=_EVENT_LINE_LIMIT,
                )
                host = _Host(process)
                # A fresh context: the reader outlives the launch that started the host (and its trace).
                host.reader = asyncio.create_task(
                    self._read_events(host), name=f"executor host {process.pid}", context=contextvars.Context()
                )
                self._host = host
                log.info("started executor host %d", process.pid)
            return self._host

    async def _read_events(self, host: _Host) -> None:
        assert host.process.stdout is not None
        async for line in host.process.stdout:
            try:
                event = ExitEvent.decode(line)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("executor host %d sent a malformed event: %s", host.process.pid, exc)
                continue
            host.running.discard(event.key)
            if self._attempts.get(event.key) is host:
                del self._attempts[event.key]
                await self._notify(StepExit(*event.key, reported=event.reported, message=event.message))
                await self._start_waiting()
        host.dead = True  # from here on, a launch starts a new host
        code = await host.process.wait()
        orphans = sorted(host.running)
        host.running.clear()
        if self._closed:
            return
        log.warning(
            "executor host %d exited with code %d; %d step(s) were running", host.process.pid, code, len(orphans)
        )
        for key in orphans:
            if self._attempts.get(key) is host:
                del self._attempts[key]
                message = f"the executor host exited (code {code}) while the step ran"
                await self._notify(StepExit(*key, reported=False, message=message))

    async def _notify(self, step_exit: StepExit) -> None:
        if self._on_exit is None or self._closed:
            return
        try:
            await self._on_exit(step_exit)
        except Exception:
            log.exception(
                "exit callback failed for %s/%s attempt %d", step_exit.workflow, step_exit.node_id, step_exit.attempt
            )
