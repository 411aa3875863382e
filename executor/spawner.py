"""The executor's side of the fork server: start, wait for and kill step commands.

One `Spawner` serves every step of an executor process. It starts
``python -m treadle.executor.forkserver`` lazily, and again after it died.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from treadle.executor.errors import ExecutorError, SandboxError
from treadle.executor.forkserver import FrameDecoder, encode_frame
from treadle.executor.sandbox import SandboxMode

log = logging.getLogger(__name__)

_STOP_GRACE_SECONDS = 5.0


@dataclass
class SpawnedProcess:
    """A running command; `wait` returns its returncode (negative for a signal, as in subprocess)."""

    request_id: int
    pid: int
    _exit: asyncio.Future[int] = field(repr=False)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)


@dataclass
class _Outgoing:
    data: bytes
    fds: list[int]
    sent: int = 0


@dataclass
class _Connection:
    """One fork server process and the socket to it."""

    process: subprocess.Popen[bytes]
    sock: socket.socket
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    outgoing: deque[_Outgoing] = field(default_factory=deque)
    started: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    exits: dict[int, asyncio.Future[int]] = field(default_factory=dict)
    closed: bool = False


class Spawner:
    def __init__(self) -> None:
        self._connection: _Connection | None = None
        self._next_id = 0

    async def spawn(
        self,
        argv: Sequence[str],
        *,
        mode: SandboxMode,
        private_tmp: str,
        cwd: str,
        env: Mapping[str, str],
        stdout_fd: int,
        stderr_fd: int,
    ) -> SpawnedProcess:
        """Start argv in its own session and sandbox. Takes ownership of (closes) stdout_fd and stderr_fd.

        Raises SandboxError when the sandbox cannot be set up and ExecutorError
        when argv cannot be executed or the fork server fails.
        """
        try:
            connection = self._connect()
        except OSError as exc:
            for fd in (stdout_fd, stderr_fd):
                os.close(fd)
            raise ExecutorError(f"cannot start the fork server: {exc}") from exc
        self._next_id += 1
        request_id = self._next_id
        loop = asyncio.get_running_loop()
        started: asyncio.Future[dict[str, Any]] = loop.create_future()
        exited: asyncio.Future[int] = loop.create_future()
        connection.started[request_id] = started
        connection.exits[request_id] = exited
        request = {
            "op": "spawn",
            "id": request_id,
            "argv": list(argv),
            "env": dict(env),
            "cwd": cwd,
            "private_tmp": private_tmp,
            "mode": mode.value,
        }
        self._send(connection, request, [stdout_fd, stderr_fd])
        try:
            answer = await started
        except BaseException:
            connection.exits.pop(request_id, None)
            if not connection.closed:  # cancelled while starting: do not leave the command running
                self._send(connection, {"op": "kill", "id": request_id})
            raise
        if answer["op"] == "failed":
            connection.exits.pop(request_id, None)
            if answer.get("stage") == "sandbox":
                raise SandboxError(f"cannot set up the step's sandbox ({mode.value}): {answer['error']}")
            raise ExecutorError(f"cannot run the command: {answer['error']}")
        return SpawnedProcess(request_id=request_id, pid=int(answer["pid"]), _exit=exited)

    def kill(self, process: SpawnedProcess) -> None:
        """SIGKILL the command's whole process group; a finished command is left alone."""
        connection = self._connection
        if connection is not None and not connection.closed and not process._exit.done():
            self._send(connection, {"op": "kill", "id": process.request_id})

    async def close(self) -> None:
        """Stop the fork server; it kills every command still running."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self._disconnect(connection, "the executor is shutting down")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STOP_GRACE_SECONDS
        while connection.process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if connection.process.poll() is None:
            connection.process.kill()
            connection.process.wait()

    def _connect(self) -> _Connection:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        if self._connection is not None:
            self._connection.process.poll()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "treadle.executor.forkserver", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        connection = _Connection(process=process, sock=ours)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_readable, connection)
        self._connection = connection
        log.debug("fork server started, pid %d", process.pid)
        return connection

    def _send(self, connection: _Connection, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """Queue a frame and write what the socket takes now; usable from cleanup code (no await)."""
        if connection.closed:
            for fd in fds or ():
                os.close(fd)
            raise ExecutorError("the fork server is not running")
        connection.outgoing.append(_Outgoing(encode_frame(message), list(fds or ())))
        self._flush(connection)

    def _flush(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        while connection.outgoing:
            item = connection.outgoing[0]
            try:
                if item.fds and item.sent == 0:
                    fds = array.array("i", item.fds).tobytes()
                    sent = connection.sock.sendmsg([item.data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                    for fd in item.fds:  # in flight now; the kernel holds its own reference
                        os.close(fd)
                    item.fds = []
                else:
                    sent = connection.sock.send(item.data[item.sent :])
            except BlockingIOError:
                loop.add_writer(connection.sock.fileno(), self._flush, connection)
                return
            except OSError as exc:
                self._disconnect(connection, f"the fork server connection failed: {exc}")
                return
            item.sent += sent
            if item.sent >= len(item.data):
                connection.outgoing.popleft()
        loop.remove_writer(connection.sock.fileno())

    def _on_readable(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            self._disconnect(connection, f"the fork server connection failed: {exc}")
            return
        if not data:
            code = connection.process.poll()
            self._disconnect(connection, f"the fork server exited (code {code})")
            return
        for message in connection.decoder.feed(data):
            request_id = message["id"]
            if message["op"] in ("spawned", "failed"):
                started = connection.started.pop(request_id, None)
                if started is not None and not started.done():
                    started.set_result(message)
            elif message["op"] == "exit":
                exited = connection.exits.pop(request_id, None)
                if exited is not None and not exited.done():
                    exited.set_result(int(message["returncode"]))

    def _disconnect(self, connection: _Connection, reason: str) -> None:
        if connection.closed:
            return
        connection.closed = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(connection.sock.fileno())
        loop.remove_writer(connection.sock.fileno())
        connection.sock.close()
        for item in connection.outgoing:
            for fd in item.fds:
                os.close(fd)
        connection.outgoing.clear()
        error = ExecutorError(reason)
        futures: list[asyncio.Future[Any]] = [*connection.started.values(), *connection.exits.values()]
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a step that stopped waiting must not log "never retrieved"
        connection.started.clear()
        connection.exits.clear()
        if self._connection is connection:
            log.warning("%s", reason)
