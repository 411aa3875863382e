"""`treadle logs -f`: running steps' lines arrive while they run; every line once, in order, prefixed by its node."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from treadle.client.client import TreadleClient
from treadle.config import ServerConfig
from treadle.services.server import start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TICKING = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: ticking}
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: quick, template: quick}
        - - {name: tick, template: tick}
        - - {name: after, template: quick}
    - name: quick
      container: {image: busybox, command: [echo, quick]}
    - name: tick
      container: {image: busybox, command: [sh, -c, "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.3; done"]}
"""


def test_following_a_workflow_streams_lines_while_steps_run(tmp_path: Path) -> None:
    async def main() -> list[tuple[float, str, str]]:
        stack = await start_stack(ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0"))
        try:
            async with TreadleClient(stack.address) as client:
                await client.submit(TICKING)
                received = []
                async with asyncio.timeout(60):
                    async for line in client.logs("ticking", follow=True):
                        received.append((time.monotonic(), line.node_name, line.content))
                final = await client.get("ticking")
                assert final.status.progress == "3/3"
                return received
        finally:
            await stack.stop(1)

    received = asyncio.run(main())
    lines = [(node, content) for _, node, content in received]
    ticks = [(node, content) for node, content in lines if node == "tick"]
    assert ticks == [("tick", f"line-{i}") for i in range(1, 7)]
    assert lines.count(("quick", "quick")) == 1 and lines.count(("after", "quick")) == 1
    assert lines.index(("quick", "quick")) < lines.index(("tick", "line-1"))
    assert lines.index(("tick", "line-6")) < lines.index(("after", "quick"))
    # Live: the first tick arrived long before the last one was written (6 lines, 0.3 s apart).
    arrival = {content: at for at, node, content in received if node == "tick"}
    assert arrival["line-6"] - arrival["line-1"] > 0.9


def test_treadle_logs_prefixes_each_line_with_its_node(tmp_path: Path) -> None:
    async def main() -> str:
        stack = await start_stack(ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0"))
        try:
            async with TreadleClient(stack.address) as client:
                await client.submit(TICKING)
            command = [sys.executable, "-m", "treadle.client.cli", "--server", stack.address, "logs", "ticking", "-f"]
            process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, stderr.decode()
            return stdout.decode()
        finally:
            await stack.stop(1)

    out = asyncio.run(main()).splitlines()
    assert out == ["quick: quick", *(f"tick: line-{i}" for i in range(1, 7)), "after: quick"]
