"""The peers' virtualenv, bench/.venv-peers: Snakemake and Prefect, pinned, never dependencies of treadle."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BENCH_DIR.parent
PEERS_VENV = BENCH_DIR / ".venv-peers"
# Pinned so that figures from different days compare; bump deliberately.
PINS = {"snakemake": "9.27.1", "prefect": "3.9.1"}
STAMP = PEERS_VENV / ".bench-peers-stamp"


def python() -> Path:
    return PEERS_VENV / "bin" / "python"


def missing_reason() -> str | None:
    """None when the peers' venv is set up with the pinned versions, else what is wrong."""
    if not python().exists():
        return f"{PEERS_VENV.relative_to(REPO_ROOT)} is missing (run `bench/run peers-setup`)"
    if not STAMP.exists() or json.loads(STAMP.read_text()) != PINS:
        return f"{PEERS_VENV.relative_to(REPO_ROOT)} does not hold {pins_text()} (run `bench/run peers-setup`)"
    return None


def installed_versions() -> dict[str, str]:
    """The versions the venv really holds, asked of its own interpreter."""
    names = list(PINS)
    code = f"import json, importlib.metadata as m; print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
    out = subprocess.run([str(python()), "-c", code], check=True, capture_output=True, text=True)
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def pins_text() -> str:
    return ", ".join(f"{name}=={version}" for name, version in PINS.items())


def setup() -> int:
    """Create bench/.venv-peers, install the pinned peers, and prepare Prefect's home (idempotent)."""
    from bench.peers import prefect_peer

    if missing_reason() is None:
        print(f"peers-setup: {PEERS_VENV} already holds {pins_text()}")
    else:
        if not python().exists():
            print(f"peers-setup: creating {PEERS_VENV}")
            venv.EnvBuilder(with_pip=True, clear=True).create(PEERS_VENV)
        print(f"peers-setup: installing {pins_text()} (a few minutes on a fresh machine)")
        pip = [str(python()), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", "-q"]
        result = subprocess.run([*pip, *(f"{name}=={version}" for name, version in PINS.items())], check=False)
        if result.returncode != 0:
            print("peers-setup: pip failed", file=sys.stderr)
            return result.returncode
        STAMP.write_text(json.dumps(PINS))
    print("peers-setup: a migrated PREFECT_HOME template (made on Prefect's first start, kept for every run)")
    problem = prefect_peer.prepare_home()
    if problem:
        print(f"peers-setup: {problem}", file=sys.stderr)
        return 1
    print(f"peers-setup: ready: {installed_versions()}")
    return 0
