"""The shell commands every tool runs, so that treadle and its peers do the same work per step.

Each step runs `sh -c SCRIPT`; the tools differ only in how they hand a value to the next step.
"""

from __future__ import annotations

import statistics
import subprocess
import time

# One step of chain200, fan1000 and the scale workloads: print N + 1.
ADD_SCRIPT = "echo $(( {n} + 1 ))"
# The fan-in step: the sum of every number in VALUES (a JSON list, or one number per line).
SUM_SCRIPT = "echo '{values}' | tr -c 0-9 '\\n' | awk '{{s += $1}} END {{print s}}'"


def add_script(n: str | int) -> str:
    return ADD_SCRIPT.format(n=n)


def sum_script(values: str) -> str:
    return SUM_SCRIPT.format(values=values)


def chain_answer(length: int) -> int:
    """What the last step of a chain prints: each of `length` steps adds 1 to 0."""
    return length


def fan_answer(width: int) -> int:
    """What the fan-in prints: the sum of item + 1 for item in 0..width-1."""
    return width * (width + 1) // 2


def bare_step_seconds(samples: int = 50) -> float:
    """Median time to run one step's command with nothing around it: fork, exec sh, wait, read stdout.

    A tool's overhead per step is its time per step minus this.
    """
    times: list[float] = []
    for n in range(samples):
        started = time.perf_counter()
        subprocess.run(["sh", "-c", add_script(n)], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)
