"""Live progress of a running workflow for `treadle submit --watch` and `treadle run`.

On a terminal, a node tree with phases, durations and N/M progress is redrawn in
place (ANSI cursor movement) whenever the workflow changes, and every second so
that running durations tick. Piped, it writes one plain line per node phase change
instead, which reads well in CI logs:

    12:00:01  [0/3]  traced  Running
    12:00:02  [1/3]  make    Succeeded  1.1s
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from treadle.client.argo_json import workflow_phase_name
from treadle.client.render import node_tree_lines, short_duration, span
from treadle.workflow.v1 import workflow_pb2 as wf_pb

if TYPE_CHECKING:
    from treadle.client.client import TreadleClient

REFRESH_SECONDS = 1.0
# "\x1b[{n}F": to the start of the line n lines up; "\x1b[J": clear to the end of the screen.
_UP_AND_CLEAR = "\x1b[{count}F\x1b[J"


def _phase_name(phase: wf_pb.NodePhase.ValueType) -> str:
    return wf_pb.NodePhase.Name(phase).removeprefix("NODE_PHASE_").capitalize()


class ProgressView:
    """Feed it every state of the workflow with update(); call close() once it is final."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._drawn = 0
        self._last: wf_pb.Workflow | None = None
        self._phases: dict[str, wf_pb.NodePhase.ValueType] = {}
        self._ticker: asyncio.Task[None] | None = None

    def update(self, workflow: wf_pb.Workflow) -> None:
        self._last = workflow
        if self._live:
            self._draw(workflow)
            if self._ticker is None:
                self._ticker = asyncio.get_running_loop().create_task(self._tick())
        else:
            self._print_changes(workflow)

    def close(self) -> None:
        """Stop refreshing; on a terminal the last tree is erased (the caller prints the final summary)."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._live and self._drawn:
            self._stream.write(_UP_AND_CLEAR.format(count=self._drawn))
            self._stream.flush()
            self._drawn = 0

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            if self._last is not None:
                self._draw(self._last)

    def frame(self, workflow: wf_pb.Workflow, now: datetime | None = None) -> list[str]:
        """The lines of one redraw: a status line, then the node tree, cut to fit the terminal."""
        now = now or datetime.now(UTC)
        status = workflow.status
        elapsed = span(
            status.started_at if status.HasField("started_at") else None,
            status.finished_at if status.HasField("finished_at") else None,
            now,
        )
        head = f"{workflow.metadata.name}  {workflow_phase_name(status.phase) or 'Pending'}"
        head += f"  {status.progress or '0/0'}"
        if elapsed is not None:
            head += f"  {short_duration(elapsed)}"
        tree = node_tree_lines(workflow, now=now) if status.nodes else []
        room = max(3, shutil.get_terminal_size().lines - 2)
        if len(tree) > room:
            hidden = len(tree) - room + 1
            tree = [*tree[: room - 1], f"   … and {hidden} more"]
        return [head, *tree]

    def _draw(self, workflow: wf_pb.Workflow) -> None:
        lines = self.frame(workflow)
        out = _UP_AND_CLEAR.format(count=self._drawn) if self._drawn else ""
        self._stream.write(out + "\n".join(lines) + "\n")
        self._stream.flush()
        self._drawn = len(lines)

    def _print_changes(self, workflow: wf_pb.Workflow) -> None:
        now = datetime.now(UTC)
        progress = workflow.status.progress or "0/0"
        for node in sorted(workflow.status.nodes.values(), key=lambda n: (n.started_at.ToNanoseconds(), n.name)):
            if self._phases.get(node.id) == node.phase:
                continue
            self._phases[node.id] = node.phase
            line = f"{now:%H:%M:%S}  [{progress}]  {node.display_name or node.name}  {_phase_name(node.phase)}"
            if node.HasField("finished_at"):
                elapsed = span(node.started_at if node.HasField("started_at") else None, node.finished_at, now)
                if elapsed is not None:
                    line += f"  {short_duration(elapsed)}"
            if node.message and node.phase in (wf_pb.NODE_PHASE_FAILED, wf_pb.NODE_PHASE_ERROR):
                line += f"  {node.message}"
            self._stream.write(line + "\n")
        self._stream.flush()


async def wait_with_progress(client: TreadleClient, name: str, stream: TextIO | None) -> wf_pb.Workflow:
    """client.wait(name), showing progress on stream (none when stream is None)."""
    if stream is None:
        return await client.wait(name)
    view = ProgressView(stream)
    try:
        return await client.wait(name, on_update=view.update)
    finally:
        view.close()
