"""The committed Python stubs match what tools/gen_protos.py generates from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generated_stubs_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gen_protos.py"), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"tools/gen_protos.py --check exited {proc.returncode}; run: python tools/gen_protos.py\n"
        f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    )
