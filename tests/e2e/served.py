"""`python -m treadle.services all` in a subprocess, for tests that need a whole server process.

A subprocess, not start_stack in the test process, when the test is about what a
process does with its environment (OTEL_* variables) or across its restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class ServedTreadle:
    """A running server process; `stop()` sends SIGTERM and waits for a clean exit."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] = {}, args: Sequence[str] = ()) -> None:
        self.port_file = data_dir / f"port-{time.monotonic_ns()}"
        self.log_file = data_dir / f"server-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "treadle.services", "all", "--listen", "127.0.0.1:0"]
        command += ["--data-dir", str(data_dir), "--port-file", str(self.port_file), "--grace-period", "2", *args]
        self._log = open(self.log_file, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start:\n{self.log_file.read_text()}")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{int(self.port_file.read_text())}"

    def stop(self) -> str:
        """Stop the server (it flushes its telemetry on the way out); return what it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.log_file.read_text()
