"""`--profile DIR`: sample the server and its executor host with py-spy while a workload runs.

py-spy (the bench extra) records every process of the server's tree in its raw
(collapsed-stack) format; `summarize` turns that into the functions where the
CPU went, per process, by own (self) and inclusive samples. Idle threads are not
sampled, so the shares are of the time each process was busy. A thread blocked in
a system call (fsync) still counts as busy; TREADLE_BENCH_PYSPY_ARGS="--gil"
samples only the thread holding the GIL, which shows Python's own CPU.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT = 30.0
_COUNT = re.compile(r"^(.*) (\d+)$")
# Frames worth listing by inclusive time: treadle's own code (as py-spy shortens its paths) and the
# libraries it leans on. Event-loop, thread and start-up frames include everything and say nothing.
_OWN_CODE = re.compile(r"\((services|executor|treadle|python|protobuf|grpc|sqlite3|json)/")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recorder:
    """py-spy record --pid PID --subprocesses, until stop()."""

    def __init__(self, pid: int, output: Path) -> None:
        executable = py_spy()
        if executable is None:
            raise RuntimeError("py-spy is not installed (pip install -e '.[bench]')")
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        command = [executable, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--nolineno"]
        command += os.environ.get("TREADLE_BENCH_PYSPY_ARGS", "").split()
        self._process = subprocess.Popen(
            [*command, "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def stop(self) -> Path | None:
        """Stop sampling and write the file; None when py-spy wrote nothing."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                self._process.wait()
        return self.output if self.output.exists() else None


@dataclass
class ProcessProfile:
    label: str
    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def _label(process_frame: str) -> str:
    command = process_frame.partition(":")[2].strip('"')
    if "treadle.executor.host" in command:
        return "executor host"
    if " serve " in f" {command} ":
        return "server (scheduler, admission, outputs, artifacts)"
    return command[:60]


def parse(raw: str) -> dict[str, ProcessProfile]:
    profiles: dict[str, ProcessProfile] = {}
    for line in raw.splitlines():
        match = _COUNT.match(line)
        if match is None:
            continue
        frames, count = match.group(1).split(";"), int(match.group(2))
        process_frames = [f for f in frames if f.startswith("process ")]
        stack = [f for f in frames if not f.startswith(("process ", "thread "))]
        label = _label(process_frames[-1]) if process_frames else "?"
        profile = profiles.setdefault(label, ProcessProfile(label))
        profile.samples += count
        if stack:
            profile.own[stack[-1]] += count
        for frame in set(stack):
            profile.inclusive[frame] += count
    return profiles


def summarize(raw: str, top: int = 25) -> str:
    lines: list[str] = []
    for profile in sorted(parse(raw).values(), key=lambda p: -p.samples):
        lines.append(f"== {profile.label}: {profile.samples} samples (at 100/s: {profile.samples / 100:.1f} s busy)")
        ours = Counter({frame: n for frame, n in profile.inclusive.items() if _OWN_CODE.search(frame)})
        for title, counter in (("own time", profile.own), ("inclusive, treadle's code and its libraries", ours)):
            lines.append(f"  -- {title}")
            for frame, count in counter.most_common(top):
                lines.append(f"  {count / profile.samples:6.1%}  {frame}")
    return "\n".join(lines)
