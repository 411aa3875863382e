"""A real S3 server for tests and benchmarks: moto in server mode, in its own process, on a free loopback port.

Its own process keeps the server's memory and CPU out of the measurements of
the process under test (moto holds objects in memory), and makes every call
cross a real socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minio import Minio

ACCESS_KEY = "treadle-test-access"
SECRET_KEY = "treadle-test-secret-5f1c0e"  # tests grep logs and responses for this


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # host:port

    def client(self) -> Minio:
        from minio import Minio

        return Minio(self.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region="us-east-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_s3_server(startup_timeout: float = 30.0) -> Iterator[str]:
    """Start moto's server; yield its host:port; stop it (by its own pid) afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        _wait_until_listening(port, process, startup_timeout)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"moto server did not listen on port {port} within {timeout:g}s")
