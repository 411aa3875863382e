"""The fork server: a small process that starts step commands for an executor.

Why a separate process: the executor runs gRPC, whose threads make forking it
slow (9-13 ms with a pre-exec hook) and unsafe (gRPC's fork handlers run), and
a multi-threaded process cannot switch mount namespaces. This one is
single-threaded and imports neither gRPC nor protobuf. For each command it
enters the step's namespace, ``posix_spawn``s the command (vfork-based, no copy
of this process) and returns to its base namespace (`treadle.executor.sandbox`).
It reaps its children: when a command exits, the rest of its process group is
killed first, as a container's processes die with it. As a child subreaper it
also reaps whatever its commands leave orphaned, so no zombies pile up.

Run as ``python -m treadle.executor.forkserver FD``, FD being one end of a Unix
stream socket. Messages both ways are frames: a 4-byte big-endian length and a
JSON object.

- ``{"op": "spawn", "id", "argv", "env", "cwd", "private_tmp", "mode"}`` with
  two file descriptors (the command's stdout and stderr) in SCM_RIGHTS.
  Answer: ``{"op": "spawned", "id", "pid"}`` or ``{"op": "failed", "id", "stage", "error"}``
  (stage "sandbox" or "exec"); later ``{"op": "exit", "id", "returncode"}``,
  negative for a signal as in subprocess.
- ``{"op": "kill", "id"}``: SIGKILL the command's process group if it still runs.

When the socket closes, every running command's group is killed and the server exits.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
from collections import deque
from typing import Any

from treadle.executor.sandbox import Namespaces, SandboxMode

HEADER = struct.Struct("!I")
FDS_PER_SPAWN = 2
PR_SET_CHILD_SUBREAPER = 36
_ANCILLARY_BYTES = socket.CMSG_SPACE(16 * array.array("i").itemsize)
# This process ignores these; a command must start with the default actions.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Splits a byte stream into JSON frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        frames: list[dict[str, Any]] = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(json.loads(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
        return frames


def received_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


def become_child_subreaper() -> None:
    """Orphans of our commands' children get this process as their parent, so `_reap` reaps them too."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class SpawnFailed(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


class ForkServer:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._decoder = FrameDecoder()
        self._fd_queue: deque[list[int]] = deque()
        self._namespaces = Namespaces()
        self._pid_of: dict[int, int] = {}  # request id -> pid, until reaped
        self._id_of: dict[int, int] = {}  # pid -> request id
        self._wake_read, wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda number, frame: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        while True:
            ready = {key.fileobj for key, _ in selector.select()}
            if self._wake_read in ready:
                self._drain_wakeups()
                self._reap()
            if self._sock in ready and not self._read_requests():
                self._shutdown()
                return

    def _read_requests(self) -> bool:
        data, ancillary, _, _ = self._sock.recvmsg(1 << 16, _ANCILLARY_BYTES, socket.MSG_CMSG_CLOEXEC)
        fds = received_fds(ancillary)
        if fds:
            self._fd_queue.append(fds)
        if not data:
            return False
        for request in self._decoder.feed(data):
            if request["op"] == "spawn":
                self._spawn(request, self._fd_queue.popleft() if self._fd_queue else [])
            elif request["op"] == "kill":
                pid = self._pid_of.get(request["id"])
                if pid is not None:
                    kill_group(pid)
        return True

    def _spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        request_id = request["id"]
        try:
            if len(fds) < FDS_PER_SPAWN:
                raise SpawnFailed("exec", "the command's stdout and stderr did not arrive")
            pid = self._start(request, fds[0], fds[1])
        except SpawnFailed as exc:
            self._send({"op": "failed", "id": request_id, "stage": exc.stage, "error": str(exc)})
            return
        finally:
            for fd in fds:
                os.close(fd)
        self._id_of[pid] = request_id
        self._pid_of[request_id] = pid
        self._send({"op": "spawned", "id": request_id, "pid": pid})

    def _start(self, request: dict[str, Any], stdout_fd: int, stderr_fd: int) -> int:
        argv: list[str] = request["argv"]
        env: dict[str, str] = request["env"]
        try:
            step = self._namespaces.step(SandboxMode(request["mode"]), request["private_tmp"], request["cwd"])
            with step:
                # Looked up inside the step's view, as an exec there would.
                program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", os.defpath))
                if program is None:
                    raise SpawnFailed("exec", f"{argv[0]}: executable file not found in $PATH")
                try:
                    return os.posix_spawn(
                        program,
                        argv,
                        env,
                        file_actions=[
                            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                            (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                            (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
                        ],
                        setsid=True,
                        setsigdef=_DEFAULT_SIGNALS,
                        setsigmask=(),
                    )
                except OSError as exc:
                    raise SpawnFailed("exec", f"{argv[0]}: {exc.strerror or exc}") from None
        except OSError as exc:
            raise SpawnFailed("sandbox", exc.strerror or str(exc)) from None

    def _reap(self) -> None:
        while True:
            try:
                exited = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if exited is None:
                return
            pid = exited.si_pid
            # Its leftover children (or, for an orphan that led a group, that group); the unreaped zombie
            # still holds the group id, so it cannot name anyone else's group.
            kill_group(pid)
            _, status = os.waitpid(pid, 0)
            request_id = self._id_of.pop(pid, None)
            if request_id is not None:
                self._pid_of.pop(request_id, None)
                self._send({"op": "exit", "id": request_id, "returncode": os.waitstatus_to_exitcode(status)})

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 4096):
                pass

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the executor is gone; the next read sees EOF
            self._sock.sendall(encode_frame(message))

    def _shutdown(self) -> None:
        for pid in self._id_of:
            kill_group(pid)
        for pid in list(self._id_of):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m treadle.executor.forkserver FD", file=sys.stderr)
        return 2
    sock = socket.socket(fileno=int(args[0]))
    sock.set_inheritable(False)  # inherited from the executor; the commands must not get it
    sock.setblocking(True)
    os.chdir("/")
    become_child_subreaper()
    ForkServer(sock).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
