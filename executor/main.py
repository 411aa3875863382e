"""main: run the step's command in its sandbox, capture its output, enforce the deadline."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass

from treadle.executor.capture import OutputCapture
from treadle.executor.init import PreparedStep, main_spec
from treadle.executor.layout import StepLayout
from treadle.executor.live_log import LiveLogSender
from treadle.executor.sandbox import SandboxMode
from treadle.executor.spawner import Spawner
from treadle.workflow.v1 import workflow_pb2

# The only variables the command inherits from the executor's environment.
HOST_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# After the command exits its group is killed; its pipes then close at once,
# unless a process that left the group holds them. Wait this long for that.
PIPE_DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class MainResult:
    # As in subprocess: negative for a signal.
    returncode: int
    # The command's stdout (its last 256 kB).
    stdout: bytes
    deadline_exceeded: bool

    @property
    def exit_code(self) -> int:
        """The exit code a shell or a container runtime reports: 128 + N for signal N."""
        return self.returncode if self.returncode >= 0 else 128 - self.returncode


def command_env(
    template: workflow_pb2.Template, layout: StepLayout, host_env: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """A minimal environment plus the template's env: never the step token or any other treadle secret."""
    env = {key: host_env[key] for key in HOST_ENV_KEYS if key in host_env}
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = layout.tmp_view
    for variable in main_spec(template).env:
        env[variable.name] = variable.value
    return env


async def run_main(
    prepared: PreparedStep,
    spawner: Spawner,
    *,
    mode: SandboxMode,
    deadline_at: float | None,
    live_log: LiveLogSender | None = None,
) -> MainResult:
    """Run the command to its end, or kill its process group at deadline_at (event-loop time).

    Raises ExecutorError (SandboxError) when the command cannot be started.
    """
    layout = prepared.layout
    loop = asyncio.get_running_loop()
    capture = OutputCapture(layout.log_file, None if live_log is None else live_log.write)
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()
    await capture.attach(stdout_read, stderr_read)
    try:
        process = await spawner.spawn(
            prepared.argv,
            mode=mode,
            private_tmp=str(layout.tmp),
            cwd=prepared.cwd,
            env=command_env(prepared.template, layout),
            stdout_fd=stdout_write,
            stderr_fd=stderr_write,
        )
    except BaseException:
        capture.abort()
        raise
    if live_log is not None:
        live_log.start()
    deadline_exceeded = False
    try:
        timeout = None if deadline_at is None else max(0.0, deadline_at - loop.time())
        try:
            returncode = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            deadline_exceeded = True
            spawner.kill(process)
            returncode = await process.wait()
    except BaseException:  # cancelled, or the fork server died
        spawner.kill(process)
        capture.abort()
        if live_log is not None:
            live_log.abort()
        raise
    await capture.finish(timeout=PIPE_DRAIN_SECONDS)
    if live_log is not None:
        await live_log.finish()
    return MainResult(returncode=returncode, stdout=capture.stdout, deadline_exceeded=deadline_exceeded)
