"""The admission core: submit, read, watch, delete and stream logs of workflow records.

It never imports grpc: the other services sit behind the protocols in peers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from treadle.errors import AlreadyExists, FieldViolation, InvalidSpec, NotFound, TreadleError, Unavailable
from treadle.services.admission.follow import follow_logs
from treadle.services.admission.listing import Listed, ListQuery, plan, scan
from treadle.services.admission.logs import log_lines, pod_nodes
from treadle.services.admission.peers import Control, Peers, StatusSnapshot
from treadle.services.admission.repository import AdmissionRepository, WorkflowRecord
from treadle.services.admission.submission import (
    ADMITTED_VERSION,
    Submission,
    new_record,
    normalize,
    pending_status,
    remember_spec,
    to_workflow,
)
from treadle.services.admission.templates import resolve_templates
from treadle.services.admission.watching import resume_after, resume_hint, until_closed
from treadle.services.artifacts.gc_plan import plan_artifact_gc
from treadle.spec.artifact_gc import wants_artifact_gc
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

# Argo's label on a resubmitted workflow, naming the one it was copied from.
RESUBMITTED_FROM_LABEL = "workflows.argoproj.io/resubmitted-from-workflow"
# Tries at a fresh generated name when the random suffix collides.
GENERATED_NAME_TRIES = 5
# How often a watcher waiting for a hand-off looks at the record, besides being woken in-process.
HAND_OFF_POLL_SECONDS = 0.5
# GetWorkflowStatus calls in flight at once while a list page collects its resource versions.
LIST_VERSION_READS = 16


@dataclass(frozen=True)
class LogLine:
    node_id: str
    node_name: str
    content: str


class Admission:
    def __init__(self, repository: AdmissionRepository) -> None:
        self.repository = repository
        self.peers = Peers.not_connected()
        # Set when a workflow is stored but its hand-off failed; the reconciler waits on it.
        self.hand_off_needed = asyncio.Event()
        # Replaced by a fresh event on every hand-off; watchers of pending workflows wait on it.
        self._handed_off = asyncio.Event()
        # Set when the server drains: open watches and log follows end so that their clients reconnect.
        self._draining = asyncio.Event()

    def end_watches(self) -> None:
        """End every open watch and log follow (with UNAVAILABLE, saying where to resume) and any started later."""
        self._draining.set()

    # ------------------------------------------------------------------ submit and lint

    async def submit(self, submission: Submission) -> workflow_pb2.Workflow:
        """Store, hand off, and answer once the record is durable.

        The record's commit and the hand-off's skip their own fsync (group commit,
        treadle.store.durability): one fdatasync, shared with the submissions in flight
        meanwhile, makes the record durable before the call returns. The handed-off marks
        of the submissions in flight share one transaction.
        """
        group = self.repository.group
        if submission.request_id:
            earlier = self.repository.find_by_request_id(submission.request_id)
            if earlier is not None:
                await group.sync()  # stored by a call that may still be waiting for its sync
                return _as_admitted(earlier)
        normalized = await self._normalize(submission)
        with group.deferred():
            record = self._store(normalized, submission.request_id)
        stored = group.written
        if not record.handed_off:
            await self._try_hand_off(record, stored)
        await group.sync(stored)
        return _as_admitted(record)

    async def _normalize(self, submission: Submission) -> dict[str, Any]:
        normalized = await normalize(submission, lambda doc: resolve_templates(doc, self.peers.templates))
        await self._check_repository(normalized.get("spec") or {})
        return normalized

    async def _check_repository(self, spec: dict[str, Any]) -> None:
        """spec.artifactRepositoryRef must name a repository the artifact service has."""
        key = str((spec.get("artifactRepositoryRef") or {}).get("key") or "")
        if not key:
            return
        try:
            await self.peers.artifacts.check_repository(key)
        except NotFound:
            raise InvalidSpec(
                FieldViolation(
                    "spec.artifactRepositoryRef.key", f"artifact repository {key!r} is not configured on this server"
                )
            ) from None

    async def lint(self, submission: Submission) -> workflow_pb2.Workflow:
        normalized = await self._normalize(submission)
        metadata = normalized.get("metadata") or {}
        record = WorkflowRecord(
            name=str(metadata.get("name") or ""),
            uid="",
            namespace=str(metadata.get("namespace") or ""),
            generate_name=str(metadata.get("generateName") or ""),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            created_at_ns=0,
            spec=normalized.get("spec") or {},
        )
        workflow = to_workflow(record)
        workflow.metadata.ClearField("creation_timestamp")
        return workflow

    def _store(self, normalized: dict[str, Any], request_id: str) -> WorkflowRecord:
        generated = not (normalized.get("metadata") or {}).get("name")
        for attempt in range(GENERATED_NAME_TRIES):
            record = new_record(normalized, request_id=request_id)
            try:
                stored = self.repository.insert(record)
            except AlreadyExists:
                if not generated or attempt == GENERATED_NAME_TRIES - 1:
                    raise
                continue
            if stored is record:
                remember_spec(record)  # validated just now (an earlier record with the request_id is not)
            return stored
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ hand-off

    async def _try_hand_off(self, record: WorkflowRecord, stored: int | None = None) -> None:
        try:
            await self.hand_off(record, stored)
        except TreadleError as exc:
            log.warning("workflow %s is stored; its hand-off to the scheduler will be retried: %s", record.name, exc)
            self.hand_off_needed.set()

    async def hand_off(self, record: WorkflowRecord, stored: int | None = None) -> None:
        """Give a stored workflow to the scheduler and mark it handed off.

        stored: the group-commit ticket of the record's insert (None: everything written so far).
        A scheduler elsewhere must never hold a workflow whose record a power loss could take
        back, so the record is made durable first; a co-hosted one commits into the same log
        after the record, and syncs before it answers.
        """
        if not getattr(self.peers.scheduler, "co_hosted", False):
            await self.repository.group.sync(stored)
        await self.peers.scheduler.start_workflow(to_workflow(record))
        if not await self.repository.mark_handed_off_batched(record.name, record.uid):
            # Deleted while the scheduler was starting it: undo the start, unless the name was taken again since.
            if not self.repository.exists(record.name):
                log.info("workflow %s was deleted during its hand-off; stopping it", record.name)
                with contextlib.suppress(NotFound):
                    await self.peers.scheduler.delete(record.name)
            return
        self._handed_off.set()
        self._handed_off = asyncio.Event()

    async def hand_off_pending(self) -> bool:
        """Hand off every stored workflow that is not yet; True when none is left."""
        all_done = True
        for record in self.repository.not_handed_off():
            try:
                await self.hand_off(record)
            except Unavailable as exc:
                log.info("scheduler unavailable, %s waits for its hand-off: %s", record.name, exc)
                return False
            except TreadleError as exc:
                log.error("the scheduler refused workflow %s: %s", record.name, exc)
                all_done = False
        return all_done and not self.repository.not_handed_off(limit=1)

    # ------------------------------------------------------------------ reads

    async def get(self, name: str) -> workflow_pb2.Workflow:
        _require_name(name)
        record = self.repository.get(name)
        snapshot = await self._status(record)
        return to_workflow(record, snapshot.status, snapshot.resource_version)

    async def list_workflows(self, query: ListQuery) -> tuple[list[workflow_pb2.Workflow], str]:
        listing = plan(query)
        page = await scan(listing, self.repository, self._statuses)
        workflows = []
        for item, snapshot in zip(page.items, await self._versioned(page.items), strict=True):
            # Gone since the scan, or no longer in a wanted phase: not a match any more.
            if snapshot is not None and listing.wants_phase(snapshot.status.phase):
                snapshot.status.ClearField("nodes")
                workflows.append(to_workflow(item.record, snapshot.status, snapshot.resource_version))
        return workflows, page.next_page_token

    async def _versioned(self, items: list[Listed]) -> list[StatusSnapshot | None]:
        """Each listed workflow's status with its resource version (the batch read has none); None if gone."""
        limit = asyncio.Semaphore(LIST_VERSION_READS)

        async def read(item: Listed) -> StatusSnapshot | None:
            if item.snapshot.resource_version is not None:
                return item.snapshot
            async with limit:
                try:
                    return await self.peers.scheduler.get_status(item.record.name, omit_nodes=True)
                except NotFound:
                    return None

        return list(await asyncio.gather(*(read(item) for item in items)))

    async def watch(self, name: str, resource_version: str = "") -> AsyncIterator[workflow_pb2.Workflow]:
        """The workflow's states newer than resource_version (all, when empty) until it is final."""
        _require_name(name)
        after = resume_after(resource_version)
        record = self.repository.get(name)
        async for workflow in until_closed(self._states(record, after), self._draining, resume_hint):
            yield workflow

    async def _states(self, record: WorkflowRecord, after: int) -> AsyncIterator[workflow_pb2.Workflow]:
        if not record.handed_off:
            if after < ADMITTED_VERSION:
                yield to_workflow(record, pending_status(), ADMITTED_VERSION)
            record = await self._wait_for_hand_off(record.name)
        async for snapshot in self.peers.scheduler.watch(record.name, after):
            yield to_workflow(record, snapshot.status, snapshot.resource_version)

    async def _statuses(self, records: list[WorkflowRecord]) -> dict[str, StatusSnapshot]:
        """A status for each record; Pending for those the scheduler does not have (yet)."""
        handed_off = [r.name for r in records if r.handed_off]
        known = await self.peers.scheduler.batch_status(handed_off) if handed_off else {}
        return {r.name: known.get(r.name) or StatusSnapshot(pending_status(), ADMITTED_VERSION) for r in records}

    async def _status(self, record: WorkflowRecord) -> StatusSnapshot:
        if record.handed_off:
            try:
                return await self.peers.scheduler.get_status(record.name)
            except NotFound:
                pass
        return StatusSnapshot(pending_status(), ADMITTED_VERSION)

    async def _wait_for_hand_off(self, name: str) -> WorkflowRecord:
        while True:
            handed_off = self._handed_off
            record = self.repository.get(name)
            if record.handed_off:
                return record
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handed_off.wait(), HAND_OFF_POLL_SECONDS)

    # ------------------------------------------------------------------ lifecycle

    async def control(self, name: str, control: Control, request_id: str = "") -> workflow_pb2.Workflow:
        """Apply a lifecycle change once per request_id; return the workflow's state after it."""
        _require_name(name)
        record = self.repository.get(name)
        if not record.handed_off:
            raise Unavailable(f"workflow {name!r} is not with the scheduler yet; try again shortly")
        method = control.verb.value
        earlier = self.repository.claim_request(request_id, method, name) if request_id else None
        if earlier is None:
            try:
                await self.peers.scheduler.control(name, control)
            except BaseException:
                if request_id:
                    self.repository.release_request(request_id)
                raise
        elif earlier != (method, name):
            raise InvalidSpec(
                FieldViolation("request_id", f"was used for {earlier[0]} of workflow {earlier[1]!r} before")
            )
        return await self.get(name)

    async def resubmit(self, name: str, parameters: dict[str, str], request_id: str = "") -> workflow_pb2.Workflow:
        """Submit a new workflow with the spec of an existing one (like `argo resubmit`)."""
        _require_name(name)
        if request_id and (earlier := self.repository.find_by_request_id(request_id)) is not None:
            return _as_admitted(earlier)
        original = to_workflow(self.repository.get(name))
        copy = workflow_pb2.Workflow(spec=original.spec)
        copy.metadata.generate_name = f"{name}-"
        copy.metadata.namespace = original.metadata.namespace
        copy.metadata.labels.update({**original.metadata.labels, RESUBMITTED_FROM_LABEL: name})
        copy.metadata.annotations.update(original.metadata.annotations)
        return await self.submit(Submission(workflow=copy, parameters=parameters, request_id=request_id))

    # ------------------------------------------------------------------ delete and logs

    async def delete(self, name: str, request_id: str = "") -> None:
        _require_name(name)
        try:
            record = self.repository.get(name)
        except NotFound:
            if request_id and self.repository.was_deleted_by(request_id, name):
                return
            raise
        # Before the scheduler forgets the workflow's nodes, which name its objects.
        await self._collect_artifacts(record)
        # NotFound: never handed off, or the scheduler forgot it already.
        with contextlib.suppress(NotFound):
            await self.peers.scheduler.delete(name)
        await self.peers.outputs.delete_workflow_outputs(name)
        self.repository.delete(name, request_id)

    async def _collect_artifacts(self, record: WorkflowRecord) -> None:
        """artifactGC on deletion: the OnWorkflowDeletion plan, and the OnWorkflowCompletion one again
        (the workflow may never have completed, or its GC may have failed). Raises Unavailable when GC
        fails: the workflow is kept, so deleting it again tries again."""
        if not wants_artifact_gc(record.spec):
            return
        workflow = to_workflow(record, (await self._status(record)).status)
        try:
            for trigger in ("OnWorkflowCompletion", "OnWorkflowDeletion"):
                plan = plan_artifact_gc(workflow, trigger)
                if not plan.empty:
                    deleted = await self.peers.artifacts.run_gc(plan)
                    log.info("artifact GC of workflow %s (%s): %d object(s) deleted", record.name, trigger, deleted)
        except TreadleError as exc:
            raise Unavailable(
                f"artifact GC of workflow {record.name!r} failed, so the workflow is kept; delete it again: {exc}"
            ) from exc

    async def logs(self, name: str, node: str = "", *, follow: bool = False) -> AsyncIterator[LogLine]:
        _require_name(name)
        record = self.repository.get(name)
        if follow:  # live lines too, until the workflow has finished (follow.py)
            async for followed in until_closed(follow_logs(self.peers, name, node), self._draining):
                yield LogLine(node_id=followed.node_id, node_name=followed.node_name, content=followed.content)
            return
        snapshot = await self._status(record)
        for pod in pod_nodes(snapshot.status, node):
            try:
                report = await self.peers.outputs.get_report(name, pod.id)
            except NotFound:
                continue  # not reported yet
            if not report.log.key:
                continue
            node_name = pod.display_name or pod.name or pod.id
            chunks = self.peers.artifacts.download(report.log.key, report.log.repository)
            async for line in log_lines(chunks, report.log.archive):
                yield LogLine(node_id=pod.id, node_name=node_name, content=line)


def _as_admitted(record: WorkflowRecord) -> workflow_pb2.Workflow:
    """What SubmitWorkflow returns: the state at admission, whatever happened since."""
    return to_workflow(record, pending_status(), ADMITTED_VERSION)


def _require_name(name: str) -> None:
    if not name:
        raise InvalidSpec(FieldViolation("name", "workflow name is required"))
