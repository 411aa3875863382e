"""WorkflowLogs with follow: every pod node's lines as they are written, until the workflow has finished.

For each pod node that has started (found by watching the workflow's status):

1. its live lines, from OutputService.FollowStepLog, while the step streams them
   (a step streams once it has run a moment; see treadle.executor.live_log);
2. then whatever the stored log holds beyond the lines already sent, once the
   step's report names it. A step too quick to stream, one that finished
   before the follow began, and one whose live stream broke all end up here.

Lines of one node keep their order; lines of nodes running side by side are
interleaved as they arrive (as `argo logs -f` does). The stream ends once the
workflow is final and every node's log has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from treadle.errors import NotFound, TreadleError, Unavailable
from treadle.services.admission.logs import log_lines, pod_nodes
from treadle.services.admission.peers import Peers
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

# How often a node's follower looks again for its live log or its report.
POLL_SECONDS = 0.2
# After its node is final, how long a follower waits for the report before giving up on it.
REPORT_GRACE_SECONDS = 5.0
_FINAL_NODE_PHASES = (
    workflow_pb2.NODE_PHASE_SUCCEEDED,
    workflow_pb2.NODE_PHASE_FAILED,
    workflow_pb2.NODE_PHASE_ERROR,
    workflow_pb2.NODE_PHASE_SKIPPED,
    workflow_pb2.NODE_PHASE_OMITTED,
)


@dataclass(frozen=True)
class FollowedLine:
    node_id: str
    node_name: str
    content: str


@runtime_checkable
class LiveLogReader(Protocol):
    def follow_log(self, workflow: str, node_id: str, from_line: int) -> AsyncIterator[list[str]]:
        """Batches of a running step's live lines from from_line on; NotFound when there is no live log."""
        ...


class _NodeFollower:
    def __init__(self, peers: Peers, workflow: str, node: workflow_pb2.NodeStatus, emit: Callable[[str], None]):
        self._peers = peers
        self._workflow = workflow
        self._node_id = node.id
        self._emit = emit
        self.phase = node.phase
        self._sent = 0
        self._final_since: float | None = None

    def seen(self, node: workflow_pb2.NodeStatus) -> None:
        self.phase = node.phase

    async def run(self) -> None:
        live = self._peers.outputs if isinstance(self._peers.outputs, LiveLogReader) else None
        live_ended = False
        while True:
            if live is not None and not live_ended:
                live_ended = await self._follow_live(live)
            # The stored log is complete once the report names it.
            if await self._report_exists() or self._gave_up():
                break
            await asyncio.sleep(POLL_SECONDS)
        await self._send_stored()

    async def _follow_live(self, live: LiveLogReader) -> bool:
        """True when a live log was followed to its end; False when there is none (yet)."""
        try:
            async for lines in live.follow_log(self._workflow, self._node_id, self._sent):
                for line in lines:
                    self._emit(line)
                self._sent += len(lines)
        except NotFound:
            return False
        except Unavailable as exc:  # the call's deadline passed, or the service restarts
            log.debug("following %s/%s: %s; resuming", self._workflow, self._node_id, exc)
            return False
        return True

    async def _report_exists(self) -> bool:
        try:
            await self._peers.outputs.get_report(self._workflow, self._node_id)
        except NotFound:
            return False
        return True

    def _gave_up(self) -> bool:
        """A final node without a report (never ran, or its executor died): nothing more will come."""
        if self.phase not in _FINAL_NODE_PHASES:
            return False
        now = asyncio.get_running_loop().time()
        if self._final_since is None:
            self._final_since = now
        return now - self._final_since > REPORT_GRACE_SECONDS

    async def _send_stored(self) -> None:
        try:
            report = await self._peers.outputs.get_report(self._workflow, self._node_id)
        except NotFound:
            return
        if not report.log.key:
            return
        index = 0
        chunks = self._peers.artifacts.download(report.log.key, report.log.repository)
        async for line in log_lines(chunks, report.log.archive):
            if index >= self._sent:
                self._emit(line)
            index += 1
        self._sent = max(self._sent, index)


async def follow_logs(peers: Peers, name: str, selector: str = "") -> AsyncIterator[FollowedLine]:
    """The lines of name's pod nodes (or those under selector) as they come, until the workflow is final."""
    queue: asyncio.Queue[FollowedLine | None] = asyncio.Queue()
    followers: dict[str, _NodeFollower] = {}
    tasks: list[asyncio.Task[None]] = []

    def emitter(node: workflow_pb2.NodeStatus) -> Callable[[str], None]:
        node_name = node.display_name or node.name or node.id
        return lambda line: queue.put_nowait(FollowedLine(node.id, node_name, line))

    async def watch() -> None:
        try:
            async for snapshot in peers.scheduler.watch(name):
                try:
                    pods = pod_nodes(snapshot.status, selector)
                except NotFound:
                    pods = []  # the selected node does not exist yet
                for pod in pods:
                    if pod.id in followers:
                        followers[pod.id].seen(pod)
                    elif pod.phase != workflow_pb2.NODE_PHASE_PENDING:
                        follower = followers[pod.id] = _NodeFollower(peers, name, pod, emitter(pod))
                        tasks.append(asyncio.create_task(follower.run(), name=f"follow {name}/{pod.id}"))
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            queue.put_nowait(None)

    watcher = asyncio.create_task(watch(), name=f"follow {name}")
    try:
        while (line := await queue.get()) is not None:
            yield line
        await watcher  # raises what the watch raised (NotFound for an unknown workflow, say)
    finally:
        for task in (watcher, *tasks):
            task.cancel()
        for task in (watcher, *tasks):
            with contextlib.suppress(asyncio.CancelledError, TreadleError):
                await task
