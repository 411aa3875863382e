"""The step sandbox: private /tmp per command, started through the fork server, and the path layout."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from treadle.executor.errors import ExecutorError, SandboxError
from treadle.executor.layout import StepLayout, safe_name
from treadle.executor.sandbox import SandboxMode
from treadle.executor.spawner import Spawner

PATH = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def run_in(
    spawner: Spawner, private_tmp: Path, argv: list[str], *, mode: SandboxMode = SandboxMode.MOUNT_NAMESPACE,
    cwd: str = "/tmp",
) -> Ran:  # fmt: skip
    private_tmp.mkdir(parents=True, exist_ok=True)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        process = await spawner.spawn(
            argv, mode=mode, private_tmp=str(private_tmp), cwd=cwd, env=PATH, stdout_fd=out_write, stderr_fd=err_write
        )
        code = await process.wait()
        return Ran(code, _read_all(out_read), _read_all(err_read))
    finally:
        os.close(out_read)
        os.close(err_read)


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def with_spawner(body: Callable[[Spawner], Awaitable[None]]) -> None:
    async def main() -> None:
        spawner = Spawner()
        try:
            await body(spawner)
        finally:
            await spawner.close()

    asyncio.run(main())


@pytest.mark.parametrize("mode", [SandboxMode.MOUNT_NAMESPACE, SandboxMode.USER_NAMESPACE])
def test_the_command_gets_its_own_tmp(tmp_path: Path, mode: SandboxMode) -> None:
    private = tmp_path / "step" / "tmp"  # under the host's /tmp itself, as pytest's tmp_path is
    (private.parent).mkdir()
    private.mkdir()
    (private / "in").write_text("staged\n")

    async def body(spawner: Spawner) -> None:
        ran = await run_in(
            spawner, private, ["sh", "-c", "cat /tmp/in; echo made > /tmp/out; pwd; ls -A /tmp"], mode=mode
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "staged\n/tmp\nin\nout\n"
        assert (private / "out").read_text() == "made\n"

    with_spawner(body)


def test_parallel_commands_never_see_each_others_files(tmp_path: Path) -> None:
    async def body(spawner: Spawner) -> None:
        script = "echo $0 > /tmp/same.txt; sleep 0.2; cat /tmp/same.txt; ls -A /tmp"
        first, second = await asyncio.gather(
            run_in(spawner, tmp_path / "a", ["sh", "-c", script, "first"]),
            run_in(spawner, tmp_path / "b", ["sh", "-c", script, "second"]),
        )
        assert (first.stdout, second.stdout) == ("first\nsame.txt\n", "second\nsame.txt\n")
        assert not os.path.exists("/tmp/same.txt")

    with_spawner(body)


def test_leftover_children_die_with_the_command(tmp_path: Path) -> None:
    async def body(spawner: Spawner) -> None:
        ran = await run_in(spawner, tmp_path / "t", ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
        assert ran.returncode == 0
        child = int(ran.stdout)
        for _ in range(100):
            if _gone(child):
                break
            await asyncio.sleep(0.01)
        assert _gone(child)

    with_spawner(body)


def test_kill_reaches_the_whole_process_group(tmp_path: Path) -> None:
    async def body(spawner: Spawner) -> None:
        private = tmp_path / "t"
        private.mkdir()
        out_read, out_write = os.pipe()
        process = await spawner.spawn(
            ["sh", "-c", "sleep 30 & echo $!; wait"], mode=SandboxMode.MOUNT_NAMESPACE, private_tmp=str(private),
            cwd="/tmp", env=PATH, stdout_fd=out_write, stderr_fd=os.dup(out_write),
        )  # fmt: skip
        child = int(os.read(out_read, 100))
        spawner.kill(process)
        assert await asyncio.wait_for(process.wait(), 5) == -9
        os.close(out_read)
        await asyncio.sleep(0.05)
        assert _gone(child)

    with_spawner(body)


def test_setup_failures_name_their_cause(tmp_path: Path) -> None:
    async def body(spawner: Spawner) -> None:
        with pytest.raises(SandboxError, match="working directory /no/such/dir: No such file or directory"):
            await run_in(spawner, tmp_path / "t", ["true"], cwd="/no/such/dir")
        with pytest.raises(ExecutorError, match="no-such-program-treadle: executable file not found in \\$PATH"):
            await run_in(spawner, tmp_path / "t", ["no-such-program-treadle"])
        ran = await run_in(spawner, tmp_path / "t", ["true"])  # the fork server still serves
        assert ran.returncode == 0

    with_spawner(body)


def test_the_fork_server_is_restarted_after_it_died(tmp_path: Path) -> None:
    async def body(spawner: Spawner) -> None:
        assert (await run_in(spawner, tmp_path / "t", ["true"])).returncode == 0
        connection = spawner._connection
        assert connection is not None
        connection.process.kill()
        connection.process.wait()
        await asyncio.sleep(0.05)
        assert (await run_in(spawner, tmp_path / "t", ["echo", "again"])).stdout == "again\n"

    with_spawner(body)


def test_spawn_overhead_is_a_few_milliseconds(tmp_path: Path) -> None:
    async def body(spawner: Spawner) -> None:
        await run_in(spawner, tmp_path / "t", ["true"])  # starts the fork server
        samples = []
        for _ in range(30):
            started = time.perf_counter()
            await run_in(spawner, tmp_path / "t", ["true"])
            samples.append(time.perf_counter() - started)
        median_ms = statistics.median(samples) * 1000
        print(f"sandboxed spawn of `true`, start to exit: median {median_ms:.1f} ms")
        assert median_ms < 50  # ~2-4 ms on an idle machine; generous for a loaded CI host

    with_spawner(body)


UNPRIVILEGED_SCRIPT = """
import asyncio, os, sys
from treadle.executor.sandbox import preferred_mode
from treadle.executor.spawner import Spawner

async def main() -> None:
    spawner = Spawner()
    read_end, write_end = os.pipe()
    process = await spawner.spawn(
        ["sh", "-c", "id -u; echo made > /tmp/x; ls -A /tmp"], mode=preferred_mode(), private_tmp=sys.argv[1],
        cwd="/tmp", env={"PATH": "/usr/bin:/bin"}, stdout_fd=write_end, stderr_fd=os.dup(write_end),
    )
    print(preferred_mode().value, await process.wait(), os.read(read_end, 4096).decode().split())
    await spawner.close()

asyncio.run(main())
"""


def test_without_root_the_sandbox_uses_a_user_namespace(tmp_path: Path) -> None:
    """Runs the fork server as nobody through the system Python, with treadle on PYTHONPATH as it is installed."""
    system_python = shutil.which("python3", path="/usr/bin")
    if os.geteuid() != 0 or not shutil.which("setpriv") or system_python is None:
        pytest.skip("needs root (to become nobody), setpriv and /usr/bin/python3")
    version = subprocess.run([system_python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    if version.stdout.strip() != "True":
        pytest.skip("/usr/bin/python3 is older than 3.11")
    root = Path(__file__).resolve().parents[2]
    work = Path(tempfile.mkdtemp(dir="/var/tmp"))  # pytest's tmp_path is not reachable for nobody
    try:
        shadow = work / "path" / "treadle"
        shadow.mkdir(parents=True)
        for entry in (root / "treadle").iterdir():
            (shadow / entry.name).symlink_to(entry)
        (shadow / "executor").symlink_to(root / "executor")
        (work / "step-tmp").mkdir()
        os.chmod(work / "step-tmp", 0o777)
        for path in (work, work / "path"):
            os.chmod(path, 0o755)
        ran = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             system_python, "-c", UNPRIVILEGED_SCRIPT, str(work / "step-tmp")],
            cwd=work, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(work / "path")},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if "cannot set up the step's sandbox" in ran.stderr:
            pytest.skip(f"unprivileged user namespaces are not allowed here: {ran.stderr.strip().splitlines()[-1]}")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "user-namespace 0 ['65534', 'x']"
        assert (work / "step-tmp" / "x").stat().st_uid == 65534
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped between the open and the read: ESRCH
        return True


# ----------------------------------------------------------------------------- layout


def test_only_tmp_paths_map_into_the_step_directory(tmp_path: Path) -> None:
    layout = StepLayout.for_step(tmp_path, "wf", "node", 2, isolated=True)
    assert layout.root == tmp_path / "wf" / "node-2"
    assert layout.host_path("/tmp/out.txt") == layout.tmp / "out.txt"
    assert layout.host_path("/tmp") == layout.tmp
    assert layout.host_path("rel/x", cwd="/tmp/work") == layout.tmp / "work" / "rel" / "x"
    assert layout.host_path("/tmp/../etc/passwd") == Path("/etc/passwd")
    assert layout.host_path("/tmpfoo") == Path("/tmpfoo")
    assert layout.host_path("/data/x") == Path("/data/x")
    assert layout.script_path == "/tmp/.treadle/script"


def test_without_isolation_paths_are_the_hosts(tmp_path: Path) -> None:
    layout = StepLayout.for_step(tmp_path, "wf", "node", 0, isolated=False)
    assert layout.host_path("/tmp/out.txt") == Path("/tmp/out.txt")
    assert layout.tmp_view == str(layout.tmp)
    assert layout.script_path == str(layout.tmp / ".treadle" / "script")


def test_names_become_single_safe_path_components() -> None:
    assert safe_name("wf-1") == "wf-1"
    assert safe_name("a/b") == "a%2Fb"
    assert safe_name("..") == "%2E."
    assert safe_name(".hidden") == "%2Ehidden"
    assert "/" not in safe_name("../../etc")
