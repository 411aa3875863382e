"""ListWorkflows: filters, opaque page tokens, and the filtering scan.

Labels and names live in admission's records; phases live in the scheduler.
So a listing walks the records newest first, keeps those whose labels and
name match, asks the scheduler for their phases (one batch call per stretch
of records), and stops when the page is full or it has examined SCAN_LIMIT
records. The page token marks the last record *examined*, not the last one
returned, so a filtered page never skips a matching workflow; it may come
back short, or empty, with a token to go on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from treadle.errors import FieldViolation, InvalidSpec
from treadle.services.admission.peers import StatusSnapshot
from treadle.services.admission.repository import AdmissionRepository, PageCursor, WorkflowRecord
from treadle.services.admission.selectors import LabelSelector, parse_label_selector
from treadle.workflow.v1 import workflow_pb2

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# Records examined per call at most; a selective filter returns a short page and a token beyond this.
SCAN_LIMIT = 2000
# Records read (and at most this many phases asked for) per step of the scan.
MIN_SCAN_BATCH = 100
TOKEN_VERSION = 1


@dataclass(frozen=True)
class ListQuery:
    """A ListWorkflows request, as the core receives it."""

    page_size: int = 0
    page_token: str = ""
    label_selector: str = ""
    phases: tuple[int, ...] = ()
    name_prefix: str = ""


@dataclass(frozen=True)
class ListPlan:
    """A validated query: what to match and where to start."""

    size: int
    after: PageCursor | None
    selector: LabelSelector
    phases: frozenset[int]
    name_prefix: str
    # Binds page tokens to the filters they were issued for.
    fingerprint: str

    @property
    def scan_batch(self) -> int:
        return max(self.size + 1, MIN_SCAN_BATCH)

    def wants(self, record: WorkflowRecord) -> bool:
        """The filters that admission can check alone (the name prefix is applied by the query)."""
        return self.selector.matches(record.labels)

    def wants_phase(self, phase: int) -> bool:
        return not self.phases or phase in self.phases


def plan(query: ListQuery) -> ListPlan:
    """Validate a query; raises InvalidSpec naming every bad field."""
    violations: list[FieldViolation] = []
    if query.page_size < 0:
        violations.append(FieldViolation("page_size", "must not be negative"))
    for index, phase in enumerate(query.phases):
        if phase == workflow_pb2.WORKFLOW_PHASE_UNSPECIFIED or phase not in workflow_pb2.WorkflowPhase.values():
            violations.append(FieldViolation(f"phases[{index}]", f"not a workflow phase: {phase}"))
    try:
        selector = parse_label_selector(query.label_selector)
    except InvalidSpec as exc:
        violations += exc.violations
        selector = LabelSelector()
    fingerprint = filter_fingerprint(query)
    after: PageCursor | None = None
    if query.page_token:
        try:
            after = decode_page_token(query.page_token, fingerprint)
        except InvalidSpec as exc:
            violations += exc.violations
    if violations:
        raise InvalidSpec(violations)
    size = min(query.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return ListPlan(size, after, selector, frozenset(query.phases), query.name_prefix, fingerprint)


def filter_fingerprint(query: ListQuery) -> str:
    filters = [query.label_selector.strip(), sorted(set(query.phases)), query.name_prefix]
    return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:16]


def encode_page_token(cursor: PageCursor, fingerprint: str) -> str:
    payload = {"v": TOKEN_VERSION, "t": cursor[0], "n": cursor[1], "f": fingerprint}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, fingerprint: str) -> PageCursor:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        created_at_ns, name, issued_for = payload["t"], payload["n"], payload["f"]
        if payload["v"] != TOKEN_VERSION or not isinstance(created_at_ns, int) or not isinstance(name, str):
            raise ValueError(token)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidSpec(FieldViolation("page_token", "not a page token from a previous response")) from None
    if issued_for != fingerprint:
        raise InvalidSpec(
            FieldViolation("page_token", "was issued for other filters; keep label_selector, phases and name_prefix")
        )
    return created_at_ns, name


@dataclass(frozen=True)
class Listed:
    record: WorkflowRecord
    snapshot: StatusSnapshot


@dataclass
class Page:
    items: list[Listed]
    next_page_token: str


# Statuses of the given records by name: one entry for each, Pending for those the scheduler does not know.
StatusLookup = Callable[[list[WorkflowRecord]], Awaitable[dict[str, StatusSnapshot]]]


async def scan(plan: ListPlan, repository: AdmissionRepository, lookup: StatusLookup) -> Page:
    """One page of the records that match the plan, newest first."""
    items: list[Listed] = []
    after = plan.after
    examined = 0
    while True:
        batch = repository.page(plan.scan_batch, after, name_prefix=plan.name_prefix)
        candidates = [record for record in batch if plan.wants(record)]
        if not plan.phases:
            # Every candidate is listed, so the page fills at this one: ask for no status beyond it.
            candidates = candidates[: plan.size - len(items)]
        snapshots = await lookup(candidates) if candidates else {}
        for position, record in enumerate(batch, start=1):
            snapshot = snapshots.get(record.name)
            if snapshot is None or not plan.wants_phase(snapshot.status.phase):
                continue
            items.append(Listed(record, snapshot))
            if len(items) == plan.size:
                exhausted = position == len(batch) and len(batch) < plan.scan_batch
                return Page(items, "" if exhausted else encode_page_token(record.cursor, plan.fingerprint))
        if len(batch) < plan.scan_batch:
            return Page(items, "")
        after = batch[-1].cursor
        examined += len(batch)
        if examined >= SCAN_LIMIT:
            return Page(items, encode_page_token(after, plan.fingerprint))
