"""The admission core: submit, read, watch, delete and stream logs of workflow records.

It never imports grpc: the other services sit behind the protocols in peers.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from treadle.errors import AlreadyExists, FieldViolation, InvalidSpec, NotFound, TreadleError, Unavailable
from treadle.services.admission.logs import log_lines, pod_nodes
from treadle.services.admission.peers import Peers, StatusSnapshot
from treadle.services.admission.repository import AdmissionRepository, PageCursor, WorkflowRecord
from treadle.services.admission.submission import Submission, new_record, normalize, pending_status, to_workflow
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# Tries at a fresh generated name when the random suffix collides.
GENERATED_NAME_TRIES = 5
# How often a watcher waiting for a hand-off looks at the record, besides being woken in-process.
HAND_OFF_POLL_SECONDS = 0.5


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

    # ------------------------------------------------------------------ submit and lint

    async def submit(self, submission: Submission) -> workflow_pb2.Workflow:
        if submission.request_id:
            earlier = self.repository.find_by_request_id(submission.request_id)
            if earlier is not None:
                return to_workflow(earlier)
        normalized = normalize(submission)
        record = self._store(normalized, submission.request_id)
        if not record.handed_off:
            await self._try_hand_off(record)
        return to_workflow(record)

    def lint(self, submission: Submission) -> workflow_pb2.Workflow:
        normalized = normalize(submission)
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
        for _ in range(GENERATED_NAME_TRIES - 1):
            try:
                return self.repository.insert(new_record(normalized, request_id=request_id))
            except AlreadyExists:
                if not generated:
                    raise
        return self.repository.insert(new_record(normalized, request_id=request_id))

    # ------------------------------------------------------------------ hand-off

    async def _try_hand_off(self, record: WorkflowRecord) -> None:
        try:
            await self.hand_off(record)
        except TreadleError as exc:
            log.warning("workflow %s is stored; its hand-off to the scheduler will be retried: %s", record.name, exc)
            self.hand_off_needed.set()

    async def hand_off(self, record: WorkflowRecord) -> None:
        """Give a stored workflow to the scheduler and mark it handed off."""
        await self.peers.scheduler.start_workflow(to_workflow(record))
        if not self.repository.mark_handed_off(record.name, record.uid):
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

    async def list_workflows(self, page_size: int, page_token: str) -> tuple[list[workflow_pb2.Workflow], str]:
        if page_size < 0:
            raise InvalidSpec(FieldViolation("page_size", "must not be negative"))
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        records = self.repository.page(size + 1, decode_page_token(page_token) if page_token else None)
        records, more = records[:size], len(records) > size
        handed_off = [r.name for r in records if r.handed_off]
        statuses = await self.peers.scheduler.batch_status(handed_off) if handed_off else {}
        workflows = [to_workflow(r, statuses.get(r.name) or pending_status()) for r in records]
        next_token = encode_page_token((records[-1].created_at_ns, records[-1].name)) if more else ""
        return workflows, next_token

    async def watch(self, name: str) -> AsyncIterator[workflow_pb2.Workflow]:
        _require_name(name)
        record = self.repository.get(name)
        if not record.handed_off:
            yield to_workflow(record, pending_status())
            record = await self._wait_for_hand_off(name)
        async for snapshot in self.peers.scheduler.watch(name):
            yield to_workflow(record, snapshot.status, snapshot.resource_version)

    async def _status(self, record: WorkflowRecord) -> StatusSnapshot:
        if record.handed_off:
            try:
                return await self.peers.scheduler.get_status(record.name)
            except NotFound:
                pass
        return StatusSnapshot(pending_status(), 0)

    async def _wait_for_hand_off(self, name: str) -> WorkflowRecord:
        while True:
            handed_off = self._handed_off
            record = self.repository.get(name)
            if record.handed_off:
                return record
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handed_off.wait(), HAND_OFF_POLL_SECONDS)

    # ------------------------------------------------------------------ delete and logs

    async def delete(self, name: str, request_id: str = "") -> None:
        _require_name(name)
        try:
            self.repository.get(name)
        except NotFound:
            if request_id and self.repository.was_deleted_by(request_id, name):
                return
            raise
        # NotFound: never handed off, or the scheduler forgot it already.
        with contextlib.suppress(NotFound):
            await self.peers.scheduler.delete(name)
        await self.peers.outputs.delete_workflow_outputs(name)
        self.repository.delete(name, request_id)

    async def logs(self, name: str, node: str = "") -> AsyncIterator[LogLine]:
        _require_name(name)
        record = self.repository.get(name)
        snapshot = await self._status(record)
        for pod in pod_nodes(snapshot.status, node):
            try:
                report = await self.peers.outputs.get_report(name, pod.id)
            except NotFound:
                continue  # not reported yet
            if not report.log.key:
                continue
            node_name = pod.display_name or pod.name or pod.id
            async for line in log_lines(self.peers.artifacts.download(report.log.key), report.log.archive):
                yield LogLine(node_id=pod.id, node_name=node_name, content=line)


def encode_page_token(cursor: PageCursor) -> str:
    return base64.urlsafe_b64encode(json.dumps([cursor[0], cursor[1]]).encode()).decode()


def decode_page_token(token: str) -> PageCursor:
    try:
        created_at_ns, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(created_at_ns, int) or not isinstance(name, str):
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidSpec(FieldViolation("page_token", "not a page token from a previous response")) from None
    return created_at_ns, name


def _require_name(name: str) -> None:
    if not name:
        raise InvalidSpec(FieldViolation("name", "workflow name is required"))
