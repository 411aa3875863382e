"""The benchmark suite's pure parts: manifests, the peers' scripts, and the arithmetic behind its figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import commands, manifests
from bench.peers import snakemake_peer
from bench.results import Target
from bench.workloads.external import _tracing_summary
from bench.workloads.scale import growth_exponent
from bench.workloads.throughput import percentile


def test_growth_exponent_recovers_the_power_law() -> None:
    sizes = [10_000, 30_000, 100_000]
    assert growth_exponent([(n, 0.002 * n) for n in sizes]) == pytest.approx(1.0)
    assert growth_exponent([(n, 3 * math.sqrt(n)) for n in sizes]) == pytest.approx(0.5)
    assert growth_exponent([(10, 5.0)]) is None
    assert growth_exponent([(10, 0.0), (20, 0.0)]) is None


def test_percentile_and_targets() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 99) == pytest.approx(99.01)
    assert percentile([], 99) is None
    assert percentile([4.0], 50) == 4.0
    assert Target("<", 10.0, "").met(9.9) is True
    assert Target(">=", 1.5, "").met(1.4) is False
    assert Target("<", 1.0, "").met(None) is None


def test_tracing_summary_is_read_from_the_scripts_closing_lines() -> None:
    text = (
        "200-step chain, median of 3 rounds:\n  tracing off: 45.20 ms/step\n"
        "  tracing on : 47.00 ms/step  (OTLP/gRPC, batching; 12 spans received)\n"
        "  overhead   : +1.80 ms/step (+4.0%; budget < 10%)\n"
    )
    assert _tracing_summary(text) == {"off_ms_per_step": 45.2, "on_ms_per_step": 47.0, "overhead_percent": 4.0}
    assert _tracing_summary("round 1: tracing off: 1 s") is None
    text = (
        "3-step chain, median of 1 rounds (load average 8.0):\n"
        "  wall per step: tracing off 102.67 ms, on  69.56 ms: -33.11 ms (-32.2%; budget < 10%)\n"
        "  CPU  per step: tracing off  36.67 ms, on  26.67 ms: -10.00 ms (-27.3%; budget < 10%)\n"
    )
    paired = text.replace("-33.11 ms (-32.2%;", "-33.11 ms; paired per round: -32.2% (")
    assert _tracing_summary(paired) == _tracing_summary(text)
    assert _tracing_summary(text) == {
        "off_ms_per_step": 102.67,
        "on_ms_per_step": 69.56,
        "overhead_percent": -32.2,
        "cpu_off_ms_per_step": 36.67,
        "cpu_on_ms_per_step": 26.67,
        "cpu_overhead_percent": -27.3,
    }


@pytest.mark.parametrize("manifest", [manifests.chain(3), manifests.fan(4), manifests.single_step()])
def test_manifests_pass_treadle_lint(manifest: manifests.Manifest, tmp_path: Path) -> None:
    path = tmp_path / "workflow.json"
    path.write_text(manifests.text(manifest))
    done = subprocess.run(
        [sys.executable, "-m", "treadle.client.cli", "lint", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def _snakemake_shell(snakefile: str, rule: str, params: dict[str, str], output: Path) -> str:
    """The shell command Snakemake would run for rule: its directive formatted as Snakemake formats it."""
    text = snakefile.split(f"rule {rule}:", 1)[1]
    directive = json.loads(text.split("shell: ", 1)[1].splitlines()[0])
    for name, value in params.items():
        directive = directive.replace(f"{{params.{name}}}", value)
    return directive.replace("{output}", str(output)).replace("{{", "{").replace("}}", "}")


def test_snakemake_rules_run_the_same_scripts(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    add = _snakemake_shell(snakemake_peer.chain_snakefile(3), "add", {"n": "41"}, out)
    subprocess.run(["bash", "-c", add], check=True)
    assert out.read_text().strip() == "42"
    values = json.dumps(list(range(1, 5)))
    total = _snakemake_shell(snakemake_peer.fan_snakefile(4), "sum", {"values": values}, out)
    subprocess.run(["bash", "-c", total], check=True)
    assert out.read_text().strip() == str(commands.fan_answer(4))
