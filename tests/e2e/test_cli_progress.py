"""`treadle submit --watch` progress when piped, and `treadle get --trace`, against a real server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from treadle.config import ServerConfig
from treadle.services.server import start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHAIN = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: chain}
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: one, template: nap}
        - - {name: two, template: nap}
    - name: nap
      container: {image: busybox, command: [sh, -c, "sleep 0.2"]}
"""


async def treadle(address: str, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    command = [sys.executable, "-m", "treadle.client.cli", "--server", address, *args]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def test_submit_watch_prints_progress_lines_when_piped_and_get_trace_draws_the_waterfall(tmp_path: Path) -> None:
    async def main() -> tuple[str, str]:
        stack = await start_stack(ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0"))
        try:
            code, watched = await treadle(stack.address, "submit", "-", "--watch", stdin=CHAIN.encode())
            assert code == 0, watched
            code, traced = await treadle(stack.address, "get", "chain", "--trace")
            assert code == 0, traced
            return watched, traced
        finally:
            await stack.stop(1)

    watched, traced = asyncio.run(main())
    progress = [line.split() for line in watched.splitlines() if line[:2].isdigit()]
    assert [words[2:4] for words in progress if words[2] == "one"] == [["one", "Running"], ["one", "Succeeded"]]
    assert [words[1] for words in progress][-1] == "[2/2]"
    assert "\x1b" not in watched  # piped: no cursor movement
    assert "Status:              Succeeded" in watched  # then the final summary
    table = traced.split("\n\n", 1)[1].splitlines()
    assert table[0].split()[:3] == ["STEP", "START", "DURATION"]
    rows = {line.split()[1]: line for line in table[1:]}
    assert set(rows) >= {"chain", "one", "two"}
    assert all(line.count("|") == 2 and "█" in line for line in rows.values())
    # two starts after one ended: its bar begins further right.
    assert rows["two"].index("█") > rows["one"].index("█")
