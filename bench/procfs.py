"""What /proc tells about a process: peak and current memory, CPU time, children."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    """Resident memory of one process, in bytes; peak is VmHWM (the high-water mark since it started)."""

    peak: int
    current: int

    @property
    def peak_mib(self) -> float:
        return self.peak / MIB

    @property
    def current_mib(self) -> float:
        return self.current / MIB


def memory(pid: int) -> Memory | None:
    """VmHWM and VmRSS of pid, or None when it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) * 1024  # reported in kB
    if "VmHWM" not in fields:
        return None  # a zombie has no memory fields
    return Memory(peak=fields["VmHWM"], current=fields.get("VmRSS", 0))


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time pid has used so far, or None when it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    after_name = text.rpartition(")")[2].split()
    return (int(after_name[11]) + int(after_name[12])) / _TICKS


def children(pid: int) -> list[int]:
    """Direct children of pid (every thread's)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
