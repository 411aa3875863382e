"""chain and fan on Snakemake: each step is a rule whose shell runs the same `sh -c` script as treadle's steps.

Snakemake hands values between steps through files: a rule's params function
reads the previous step's output and substitutes it into the script, as
treadle substitutes `{{steps.X.outputs.result}}`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.commands import add_script, sum_script
from bench.peers.venv import PEERS_VENV
from bench.results import PeerRun

CORES = 2
PLACEHOLDER = "@VALUE@"


def _shell(script: str, param: str) -> str:
    """A rule's shell directive `sh -c 'SCRIPT' > {output}`, its value taken from {params.<param>}.

    script holds PLACEHOLDER where the value goes; Snakemake's own braces in it are doubled.
    """
    escaped = script.replace("{", "{{").replace("}", "}}").replace(PLACEHOLDER, f"{{params.{param}}}")
    return json.dumps(f"sh -c {_single_quoted(escaped)} > {{output}}")


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def chain_snakefile(length: int) -> str:
    return f"""
def previous(wildcards):
    return [f"chain/{{int(wildcards.i) - 1}}.txt"] if int(wildcards.i) > 0 else []

def previous_value(wildcards, input):
    return open(input[0]).read().strip() if input else "0"

rule all:
    input: "chain/{length - 1}.txt"

rule add:
    input: previous
    output: "chain/{{i}}.txt"
    params: n=previous_value
    shell: {_shell(add_script(PLACEHOLDER), "n")}
"""


def fan_snakefile(width: int) -> str:
    return f"""
import json

def all_values(wildcards, input):
    return json.dumps([int(open(path).read()) for path in input])

rule all:
    input: "sum.txt"

rule add:
    output: "fan/{{n}}.txt"
    params: n=lambda wildcards: wildcards.n
    shell: {_shell(add_script(PLACEHOLDER), "n")}

rule sum:
    input: expand("fan/{{n}}.txt", n=range({width}))
    output: "sum.txt"
    params: values=all_values
    shell: {_shell(sum_script(PLACEHOLDER), "values")}
"""


def one_step_snakefile() -> str:
    return chain_snakefile(1)


def run(snakefile: str, answer_file: str, *, timeout: float) -> PeerRun:
    """Run snakemake on snakefile in a scratch directory; the answer is what answer_file holds."""
    with tempfile.TemporaryDirectory(prefix="bench-snakemake-") as scratch:
        work = Path(scratch)
        (work / "Snakefile").write_text(snakefile)
        command = [
            str(PEERS_VENV / "bin" / "snakemake"),
            "--snakefile",
            str(work / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            str(CORES),
        ]
        env = {**os.environ, "HOME": str(work)}  # its caches and config stay in the scratch directory
        log = work / "snakemake.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            try:
                code = subprocess.run(command, stdout=out, stderr=out, env=env, timeout=timeout, check=False).returncode
            except subprocess.TimeoutExpired:
                return PeerRun.failed(f"did not finish within {timeout:g}s")
        wall = time.perf_counter() - started
        if code != 0:
            return PeerRun.failed(f"snakemake exited with {code}: {_tail(log)}")
        answer = (work / answer_file).read_text().strip()
    return PeerRun(ok=True, wall_seconds=wall, answer=answer)


def startup_seconds(*, timeout: float) -> float | None:
    """Snakemake's fixed cost: the wall time of a one-step workflow (its step included)."""
    one = run(one_step_snakefile(), "chain/0.txt", timeout=timeout)
    return one.wall_seconds if one.ok else None


def _tail(path: Path, lines: int = 5) -> str:
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
