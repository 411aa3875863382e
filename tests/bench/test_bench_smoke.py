"""The benchmark suite still runs end to end: `bench/run all --smoke` (see bench/README.md).

A benchmark is not a test: no figure is asserted here, only that every workload ran
and landed in the results document. --no-peers keeps the run bounded on a machine that
has bench/.venv-peers (in CI it does not exist, and smoke mode skips the peers anyway).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {"chain200", "fan1000", "fan10k", "huge", "admission", "e2e", "artifacts", "tracing"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_smoke_run_writes_every_workload(tmp_path: Path) -> None:
    env = {**os.environ, "TREADLE_BENCH_PYTHON": sys.executable}
    command = [str(ROOT / "bench" / "run"), "all", "--smoke", "--no-peers", "--results-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=280, env=env, check=False)
    output = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output

    doc = json.loads((tmp_path / "smoke.json").read_text())
    assert doc["mode"] == "smoke"
    assert set(doc["workloads"]) >= WORKLOADS, output
    for name in WORKLOADS:
        assert doc["workloads"][name]["status"] in ("ok", "skipped"), (name, doc["workloads"][name]["notes"])
    machine = doc["machine"]
    assert machine["cores"] and machine["cpu_model"] and machine["python"] and machine["memory_gib"]
    assert doc["date"]
    assert "treadle bench (smoke)" in done.stdout
