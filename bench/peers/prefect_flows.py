# Type-checked from treadle's venv, where Prefect is not installed (it lives in bench/.venv-peers).
# mypy: disable-error-code="import-not-found,untyped-decorator,no-any-return"
"""chain and fan as Prefect flows; runs inside bench/.venv-peers, never in treadle's venv.

    python bench/peers/prefect_flows.py chain 200
    python bench/peers/prefect_flows.py fan 1000

Each task runs the same `sh -c` script as treadle's steps and returns its
stdout as an int. A one-task flow runs first so that Prefect's ephemeral
server is up; the line printed last is JSON: {"warm_seconds": ..., "answer": ...},
warm_seconds being the measured flow alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench.commands: the shared scripts

from prefect import flow, task

from bench.commands import add_script, sum_script

RESULT_MARKER = "BENCH-RESULT "


def _sh(script: str) -> int:
    done = subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True)
    return int(done.stdout)


@task
def add(n: int) -> int:
    return _sh(add_script(n))


@task
def total(values: list[int]) -> int:
    return _sh(sum_script(json.dumps(values)))


@flow
def chain(length: int) -> int:
    value = 0
    for _ in range(length):
        value = add(value)
    return value


@flow
def fan(width: int) -> int:
    futures = add.map(range(width))
    return total([future.result() for future in futures])


def main() -> int:
    shape, size = sys.argv[1], int(sys.argv[2])
    measured = {"chain": chain, "fan": fan}[shape]
    chain(1)  # warm-up: starts the ephemeral server
    started = time.perf_counter()
    answer = measured(size)
    warm = time.perf_counter() - started
    print(RESULT_MARKER + json.dumps({"warm_seconds": warm, "answer": str(answer)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
