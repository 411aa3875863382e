"""An all-in-one treadle server (`treadle serve all`) in a subprocess, with a temporary data directory.

The suite measures the server from outside, as an operator would: peak RSS
(VmHWM) and CPU time of its process, read from /proc, and of the executor host
it starts (its child) on the first step.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench import procfs
from bench.profiling import Recorder, summarize

START_TIMEOUT = 60.0
STOP_GRACE = 10.0
EXECUTOR_HOST_MODULE = "treadle.executor.host"


def treadle_command() -> list[str]:
    """The `treadle` console script of the interpreter running the suite."""
    script = Path(sys.executable).parent / "treadle"
    return [str(script)] if script.exists() else [sys.executable, "-m", "treadle.client.cli"]


@dataclass(frozen=True)
class ServerUsage:
    """What the server's processes used up to now."""

    server: procfs.Memory
    server_cpu_seconds: float
    executor_host: procfs.Memory | None
    executor_host_cpu_seconds: float | None

    def as_json(self) -> dict[str, float | None]:
        host = self.executor_host
        return {
            "server_peak_rss_mib": round(self.server.peak_mib, 1),
            "server_rss_mib": round(self.server.current_mib, 1),
            "server_cpu_seconds": round(self.server_cpu_seconds, 2),
            "executor_host_peak_rss_mib": round(host.peak_mib, 1) if host else None,
            "executor_host_cpu_seconds": (
                round(self.executor_host_cpu_seconds, 2) if self.executor_host_cpu_seconds is not None else None
            ),
        }


class TreadleServer:
    """`async with TreadleServer() as server:` serves on a free loopback port until the block ends."""

    def __init__(self, *, log_level: str = "WARNING", keep_data: bool = False, profile: Path | None = None) -> None:
        self._log_level = log_level
        self._keep_data = keep_data
        # With a path, py-spy samples the server and its children into it (raw), and a summary beside it.
        self._profile = profile
        self._recorder: Recorder | None = None
        self.data_dir = Path(tempfile.mkdtemp(prefix="treadle-bench-"))
        self.log_file = self.data_dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.address = ""

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server has not started"
        return self._process.pid

    async def __aenter__(self) -> TreadleServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        port_file = self.data_dir / "port"
        command = [
            *treadle_command(),
            "serve",
            "all",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(self.data_dir / "state"),
            "--port-file",
            str(port_file),
            "--log-level",
            self._log_level,
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while not port_file.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"treadle serve exited with code {self._process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(f"treadle serve did not start within {START_TIMEOUT:g}s: {self.log_tail()}")
            await asyncio.sleep(0.02)
        self.address = f"127.0.0.1:{int(port_file.read_text())}"
        if self._profile is not None:
            self._recorder = Recorder(self.pid, self._profile)

    def executor_host_pid(self) -> int | None:
        for child in procfs.children(self.pid):
            if EXECUTOR_HOST_MODULE in procfs.command_line(child):
                return child
        return None

    def usage(self) -> ServerUsage:
        """Peak and current memory and CPU time of the server and its executor host, read now."""
        server = procfs.memory(self.pid)
        if server is None:
            raise RuntimeError(f"the treadle server (pid {self.pid}) has gone: {self.log_tail()}")
        host_pid = self.executor_host_pid()
        return ServerUsage(
            server=server,
            server_cpu_seconds=procfs.cpu_seconds(self.pid) or 0.0,
            executor_host=procfs.memory(host_pid) if host_pid else None,
            executor_host_cpu_seconds=procfs.cpu_seconds(host_pid) if host_pid else None,
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    async def stop(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            raw = await asyncio.to_thread(recorder.stop)
            if raw is not None:
                raw.with_suffix(".summary.txt").write_text(summarize(raw.read_text(errors="replace")) + "\n")
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.to_thread(process.wait)
        if not self._keep_data:
            await asyncio.to_thread(shutil.rmtree, self.data_dir, True)
