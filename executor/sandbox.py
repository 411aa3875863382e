"""A step's own filesystem view: a private mount namespace whose /tmp is the step's directory.

The fork server (`treadle.executor.forkserver`, single-threaded, no gRPC)
makes the namespaces with libc calls through ctypes. It spawns no `unshare`
or `sh` and forks no Python child: it moves *itself* into a fresh namespace,
starts the command there with ``posix_spawn`` (vfork-based, about half a
millisecond), and moves back. Per step:

1. ``unshare(CLONE_NEWNS)``: a new mount namespace, a copy of the base one.
2. ``mount(<stepdir>/tmp, "/tmp", MS_BIND)``: the step's directory becomes its /tmp.
3. ``chdir(cwd)``, after the bind, so a working directory under /tmp is the private one.
4. ``posix_spawn`` the command, which stays in that namespace with its children.
5. ``setns(base)``: back to the base namespace for the next step.

The base namespace is made once, on the first isolated step: ``unshare(CLONE_NEWNS)``
and ``mount(NULL, "/", NULL, MS_REC | MS_SLAVE)``, so the host's later mounts
still reach the steps while nothing mounted in a step reaches the host. Without
root it is ``unshare(CLONE_NEWUSER | CLONE_NEWNS)`` with the caller's uid and gid
mapped onto themselves (``setgroups`` denied first, as the kernel requires); the
per-step namespaces then belong to that user namespace. A namespace goes away
with the last process in it: nothing stays mounted on the host.

Limitations (isolation, not a security boundary; the Docker and Kubernetes runtimes are that):

- Only /tmp is private. Any other path, for example ``/work/out.txt``, is the
  host's own path: parallel steps writing it do collide, and the file stays.
- The command runs as the executor's user and sees the rest of the host's files.
- The command leads its own session; its whole process group is killed when it
  exits or overruns. A process that starts yet another session escapes that.
- If the fork server itself is SIGKILLed, running commands are not killed
  (``posix_spawn`` cannot set a parent-death signal). When the executor dies the
  fork server sees its socket close and kills them.

This module uses the standard library only: the fork server imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import os
from collections.abc import Iterator

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000

# Where the command sees its private directory.
PRIVATE_TMP = "/tmp"


class SandboxMode(enum.Enum):
    """How a step's command is isolated."""

    # Mount namespaces; needs CAP_SYS_ADMIN (in practice root).
    MOUNT_NAMESPACE = "mount-namespace"
    # A user namespace owning the mount namespaces: works without root where
    # unprivileged user namespaces are allowed.
    USER_NAMESPACE = "user-namespace"
    # No isolation: the command sees the host's /tmp. For runtimes that
    # isolate the step already (a container) and hosts that allow neither.
    NONE = "none"

    @property
    def isolated(self) -> bool:
        return self is not SandboxMode.NONE


def preferred_mode() -> SandboxMode:
    """The namespace kind this process can create: a plain mount namespace as root, else a user namespace."""
    return SandboxMode.MOUNT_NAMESPACE if os.geteuid() == 0 else SandboxMode.USER_NAMESPACE


class _Libc:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.unshare = libc.unshare
        self.unshare.argtypes = [ctypes.c_int]
        self.unshare.restype = ctypes.c_int
        self.setns = libc.setns
        self.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        self.setns.restype = ctypes.c_int
        self.mount = libc.mount
        self.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
        self.mount.restype = ctypes.c_int


_libc = _Libc()


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Namespaces:
    """The mount namespaces a single-threaded process makes for the commands it spawns."""

    def __init__(self) -> None:
        self._base: int | None = None
        self._base_error: OSError | None = None

    @contextlib.contextmanager
    def step(self, mode: SandboxMode, private_tmp: str, cwd: str) -> Iterator[None]:
        """Inside: this process is in the step's namespace (if mode isolates) and in cwd.

        A command spawned inside stays there. Raises OSError (its strerror says
        which call failed) when the namespace cannot be set up.
        """
        if not mode.isolated:
            _chdir(cwd)
            try:
                yield
            finally:
                os.chdir("/")
            return
        base = self._base_namespace(mode)
        _check(_libc.unshare(CLONE_NEWNS), "unshare")
        try:
            _check(_libc.mount(os.fsencode(private_tmp), PRIVATE_TMP.encode(), None, MS_BIND, None), "binding /tmp")
            _chdir(cwd)
            yield
        finally:
            _check(_libc.setns(base, CLONE_NEWNS), "returning to the base namespace")  # also resets cwd to /

    def _base_namespace(self, mode: SandboxMode) -> int:
        if self._base is not None:
            return self._base
        if self._base_error is not None:
            raise self._base_error
        try:
            if mode is SandboxMode.USER_NAMESPACE:
                uid, gid = os.getuid(), os.getgid()
                _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
                _write_proc("/proc/self/setgroups", "deny")
                _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
                _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")
            else:
                _check(_libc.unshare(CLONE_NEWNS), "unshare")
            _check(_libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None), "making / a slave of the host")
            self._base = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._base_error = exc
            raise
        return self._base


def _chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise OSError(exc.errno, f"working directory {cwd}: {exc.strerror}") from None
