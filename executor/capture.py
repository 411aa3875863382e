"""Capture a command's output: stdout for the result, and stdout+stderr line by line into the log file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from treadle.services.artifacts.values import MAX_VALUE_BYTES

# Argo keeps the last 256 kB of stdout as the result; treadle cuts nothing. stdout is kept up to one byte
# past the most a result may hold, so that the wait phase can tell an over-long result and fail the step
# (saying so) instead of reporting part of it. Longer results travel as blobs (services/artifacts/values.py).
RESULT_LIMIT_BYTES = MAX_VALUE_BYTES + 1
# A line longer than this is written to the log in pieces rather than held back.
_MAX_HELD_BYTES = 64 * 1024


class _PipeReader(asyncio.Protocol):
    def __init__(self, capture: OutputCapture, keeps_result: bool) -> None:
        self._capture = capture
        self._keeps_result = keeps_result
        self._partial = bytearray()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._keeps_result:
            self._capture._keep_stdout(data)
        self._partial += data
        # Whole lines only, so a stdout line and a stderr line never interleave mid-line.
        end = self._partial.rfind(b"\n") + 1
        if end == 0 and len(self._partial) > _MAX_HELD_BYTES:
            end = len(self._partial)
        if end:
            self._capture._write_log(bytes(self._partial[:end]))
            del self._partial[:end]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial and not self._capture._log.closed:
            self._capture._write_log(bytes(self._partial) + b"\n")
            self._partial.clear()
        if not self.closed.done():
            self.closed.set_result(None)


def _factory(reader: _PipeReader) -> Callable[[], _PipeReader]:
    return lambda: reader


class OutputCapture:
    def __init__(self, log_file: Path, on_log: Callable[[bytes], None] | None = None) -> None:
        self._log: BinaryIO = open(log_file, "wb")  # noqa: SIM115 - closed in finish()
        # Also given each chunk written to the log (the live log stream).
        self._on_log = on_log
        self._stdout = bytearray()
        self._readers: list[_PipeReader] = []

    @property
    def stdout(self) -> bytes:
        """The command's stdout (its first RESULT_LIMIT_BYTES: longer means too long)."""
        return bytes(self._stdout)

    async def attach(self, stdout_fd: int, stderr_fd: int) -> None:
        """Start reading the read ends of the command's stdout and stderr pipes (takes ownership)."""
        loop = asyncio.get_running_loop()
        for fd, keeps_result in ((stdout_fd, True), (stderr_fd, False)):
            reader = _PipeReader(self, keeps_result)
            self._readers.append(reader)
            await loop.connect_read_pipe(_factory(reader), os.fdopen(fd, "rb", buffering=0))

    async def finish(self, timeout: float) -> None:
        """Wait for both pipes to close (a leftover process may hold them), then close the log."""
        pending = [r.closed for r in self._readers if not r.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for reader in self._readers:
            if reader.transport is not None and not reader.closed.done():
                reader.transport.close()
                reader.connection_lost(None)
        self._log.close()

    def abort(self) -> None:
        """Stop reading now (the step was cancelled)."""
        for reader in self._readers:
            if reader.transport is not None:
                reader.transport.close()
        self._log.close()

    def _write_log(self, data: bytes) -> None:
        self._log.write(data)
        if self._on_log is not None:
            self._on_log(data)

    def _keep_stdout(self, data: bytes) -> None:
        room = RESULT_LIMIT_BYTES - len(self._stdout)
        if room > 0:
            self._stdout += data[:room]
