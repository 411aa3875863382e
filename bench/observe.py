"""Submitting a workflow and timing it until it ends, as a client sees it.

Two ways to notice the end:
- "watch" (what `treadle run` and `treadle submit --watch` do): WatchWorkflow streams every change,
  each one the workflow with all its nodes. Right for small workflows.
- "poll": ListWorkflows with a name prefix, four times a second. It carries the phase and the
  "done/total" progress without the node map, so watching a 100,000-node workflow does not itself
  cost the server a full status per change. Used for the scale workloads.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Literal

from treadle import errors
from treadle.client import TreadleClient
from treadle.client.argo_json import FINAL_WORKFLOW_PHASES, workflow_phase_name
from treadle.client.client import ListFilter
from treadle.workflow.v1.workflow_pb2 import Workflow

Observer = Literal["watch", "poll"]
POLL_INTERVAL = 0.25


@dataclass
class Outcome:
    name: str
    # Argo's word (Succeeded, Failed, Error, Running, ...); "" when the workflow was never seen.
    phase: str
    # From just before SubmitWorkflow to the moment the end was seen (or the timeout).
    seconds: float
    timed_out: bool
    progress: str = ""
    message: str = ""
    # The final workflow with its nodes, when the observer fetched it.
    workflow: Workflow | None = None
    # SubmitWorkflow failed (a deadline, say) but the workflow, named in advance, was looked for all the same.
    submit_error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded" and not self.timed_out

    def describe(self) -> str:
        if self.submit_error and not self.phase:
            return f"{self.name}: SubmitWorkflow failed ({self.submit_error}) and the workflow never appeared"
        if self.timed_out:
            return (
                f"{self.name} had not finished after {self.seconds:.0f}s (phase {self.phase}, progress {self.progress})"
            )
        return f"{self.name} ended {self.phase} in {self.seconds:.2f}s" + (f": {self.message}" if self.message else "")


async def run_workflow(client: TreadleClient, manifest: str, *, timeout: float, observer: Observer) -> Outcome:
    """Submit manifest, wait for a final phase (or timeout), and time it.

    When the manifest names its workflow (metadata.name) and SubmitWorkflow fails with UNAVAILABLE
    (its deadline, under load), the workflow may be admitted all the same: it is polled for by name.
    """
    started = time.perf_counter()
    known_name = str(json.loads(manifest).get("metadata", {}).get("name", ""))
    try:
        name = (await client.submit(manifest)).metadata.name
    except errors.Unavailable as exc:
        if not known_name:
            raise
        outcome = await _poll(client, known_name, started, timeout)
        outcome.submit_error = str(exc)
        return outcome
    if observer == "watch":
        return await _watch(client, name, started, timeout)
    return await _poll(client, name, started, timeout)


async def _watch(client: TreadleClient, name: str, started: float, timeout: float) -> Outcome:
    remaining = max(0.0, timeout - (time.perf_counter() - started))
    try:
        final = await client.wait(name, timeout=remaining)
    except TimeoutError:
        outcome = await _poll(client, name, started, 0.0)
        outcome.timed_out = True
        return outcome
    return Outcome(
        name=name,
        phase=workflow_phase_name(final.status.phase),
        seconds=time.perf_counter() - started,
        timed_out=False,
        progress=final.status.progress,
        message=final.status.message,
        workflow=final,
    )


async def _poll(client: TreadleClient, name: str, started: float, timeout: float) -> Outcome:
    filters = ListFilter(name_prefix=name)
    seen: Workflow | None = None
    while True:
        try:
            page, _ = await client.list_page(page_size=10, filters=filters)
            seen = next((w for w in page if w.metadata.name == name), seen)
        except errors.Unavailable:
            pass  # a busy server missed a poll's deadline; the next poll tries again
        elapsed = time.perf_counter() - started
        if seen is not None and seen.status.phase in FINAL_WORKFLOW_PHASES:
            return Outcome(
                name=name,
                phase=workflow_phase_name(seen.status.phase),
                seconds=elapsed,
                timed_out=False,
                progress=seen.status.progress,
                message=seen.status.message,
            )
        if elapsed >= timeout:
            return Outcome(
                name=name,
                phase=workflow_phase_name(seen.status.phase) if seen else "",
                seconds=elapsed,
                timed_out=True,
                progress=seen.status.progress if seen else "",
                message=seen.status.message if seen else "",
            )
        await asyncio.sleep(POLL_INTERVAL)


def node_result(workflow: Workflow, display_name: str) -> str | None:
    """outputs.result of the node with that display name, if there is one."""
    for node in workflow.status.nodes.values():
        if node.display_name == display_name and node.outputs.HasField("result"):
            return node.outputs.result
    return None


def done_steps(progress: str) -> int | None:
    """The "done" of a "done/total" progress string."""
    done, _, total = progress.partition("/")
    return int(done) if done.isdigit() and total else None


def total_steps(progress: str) -> int | None:
    """The "total" of a "done/total" progress string: the step nodes created so far."""
    done, _, total = progress.partition("/")
    return int(total) if done and total.isdigit() else None
