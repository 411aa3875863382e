"""The scheduler's share of a workflow's telemetry: its trace, its node spans, and the scheduling metrics.

The scheduler is the one component that sees a workflow from start to end, so
it emits the spans that outlive any single call (see `treadle.telemetry.ids`):

- ``workflow <name>``, the root: from submission to the final phase.
- ``node <display name>`` for every node, under its parent node's span (the
  workflow's own node under the root), emitted when the node finishes.
- ``queue`` (ready until launched) and ``launch`` (the runtime's launch call)
  under each pod node, once per attempt.

The executor's spans name the pod node's span as parent through TRACEPARENT.
The workflow's trace id (and so every id above) is kept in this module's own
table, ``scheduler_traces``, so a scheduler that restarts goes on in the same
trace. Everything else here is in memory: after a restart, a queued step's
`queue` span starts at the restart.

It never touches the engine's records; it only reads them after each commit.
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanContext, Status, StatusCode

from treadle.services.scheduler.engine import Node, NodePhase, NodeType, WorkflowState
from treadle.services.scheduler.runtimes.base import LaunchSpec
from treadle.store.sqlite import migrate
from treadle.telemetry import metrics, names
from treadle.telemetry.context import attached, context_with_parent, format_traceparent, remote_span_context
from treadle.telemetry.ids import new_workflow_trace_id, node_span_id, root_span_id, trace_start_time
from treadle.telemetry.providers import tracing_enabled
from treadle.telemetry.spans import emit_span, start_span_at

SCHEMA = [
    """CREATE TABLE scheduler_traces (
        workflow TEXT PRIMARY KEY,
        trace_id TEXT NOT NULL,
        started_at REAL NOT NULL
    )""",
]
_FAILED = (NodePhase.FAILED, NodePhase.ERROR)


@dataclass(frozen=True)
class WorkflowTrace:
    """Where a workflow's spans go: its trace, and when its root span started."""

    trace_id: int
    started_at: float
    # The root span of the run this one retries, linked from the new root.
    previous_root: SpanContext | None = None

    @property
    def root(self) -> SpanContext:
        return remote_span_context(self.trace_id, root_span_id(self.trace_id))

    def node(self, node_id: str) -> SpanContext:
        return remote_span_context(self.trace_id, node_span_id(self.trace_id, node_id))

    def parent_of(self, node: Node) -> SpanContext:
        return self.node(node.parent_id) if node.parent_id else self.root


@dataclass
class _Watched:
    """What this process remembers of one running workflow."""

    trace: WorkflowTrace
    # Pod node id -> when it became ready (the start of its `queue` span).
    ready_at: dict[str, float] = field(default_factory=dict)
    # Nodes counted as started, and node id -> finished_at of the span emitted for it.
    started: set[str] = field(default_factory=set)
    emitted: dict[str, float] = field(default_factory=dict)
    # Attempts launched whose executor has not fetched its context yet: node id -> attempts. Keyed by
    # node so that a finished node drops its own entries without a scan of every launched step.
    awaiting_start: dict[str, set[int]] = field(default_factory=dict)
    phase: str = NodePhase.PENDING
    queued: int = 0

    @property
    def awaiting(self) -> int:
        return sum(len(attempts) for attempts in self.awaiting_start.values())


_live: weakref.WeakSet[SchedulerTelemetry] = weakref.WeakSet()


def _observe_workflows(options: CallbackOptions) -> Iterator[Observation]:
    counts: dict[str, int] = {}
    for telemetry in list(_live):
        for watched in telemetry.watched():
            counts[watched.phase] = counts.get(watched.phase, 0) + 1
    for phase in (NodePhase.PENDING, NodePhase.RUNNING):
        yield Observation(counts.get(phase, 0), {names.PHASE: phase})


def _observe_queue(options: CallbackOptions) -> Iterator[Observation]:
    yield Observation(sum(w.queued + w.awaiting for t in list(_live) for w in t.watched()))


metrics.meter().create_observable_gauge(
    "treadle.workflows.active", [_observe_workflows], description="Workflows the scheduler is running, by phase"
)
metrics.meter().create_observable_gauge(
    "treadle.queue.depth",
    [_observe_queue],
    description="Steps ready to run that have not started: held back (parallelism, locks, suspend) or launching",
)


class SchedulerTelemetry:
    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock
        self._watched: dict[str, _Watched] = {}
        migrate(conn, "scheduler_telemetry", SCHEMA)
        _live.add(self)

    def watched(self) -> Iterable[_Watched]:
        return list(self._watched.values())

    # -- workflows ----------------------------------------------------------------

    def admitted(self, name: str, created_at: float | None) -> WorkflowTrace:
        """A new workflow: continue the trace its submission started (or start one) and store it."""
        now = self._clock()
        incoming = _incoming_trace_id()
        started = created_at or now
        if incoming is None:
            trace_id = new_workflow_trace_id(started)
        else:
            trace_id = incoming
            started = min(started, trace_start_time(trace_id, started) or started)
        record = WorkflowTrace(trace_id, started)
        self._store(name, record)
        metrics.workflows_started().add(1)
        return record

    def loaded(self, state: WorkflowState, nodes: Iterable[Node]) -> None:
        """A workflow this process drives from now on (new, resumed after a restart, or retried)."""
        record = self._watched[state.name].trace if state.name in self._watched else self._load(state.name)
        watched = _Watched(record, phase=state.phase)
        for node in nodes:
            if node.started_at is not None:
                watched.started.add(node.id)
                if node.type == NodeType.POD and not node.done:
                    watched.ready_at[node.id] = node.started_at  # before a relaunch moves started_at
            if node.done and node.finished_at is not None:
                watched.emitted[node.id] = node.finished_at
        self._watched[state.name] = watched

    def retried(self, name: str) -> None:
        """A finished workflow runs again: a new trace, whose root links to the previous run's."""
        watched = self._watched.get(name)
        previous = watched.trace if watched is not None else self._load(name)
        now = self._clock()
        record = WorkflowTrace(new_workflow_trace_id(now), now, previous_root=previous.root)
        self._store(name, record)
        if watched is not None:
            watched.trace = record

    def forget(self, name: str) -> None:
        self._watched.pop(name, None)
        self._conn.execute("DELETE FROM scheduler_traces WHERE workflow = ?", (name,))

    def traceparent(self, workflow: str, node_id: str) -> str:
        watched = self._watched.get(workflow)
        return format_traceparent(watched.trace.node(node_id)) if watched is not None else ""

    # -- after every commit -----------------------------------------------------

    def committed(self, state: WorkflowState, changed: Iterable[Node]) -> None:
        """Read what the engine just changed: count, emit spans for what finished, note what became ready."""
        watched = self._watched.get(state.name)
        if watched is None:
            return
        now = self._clock()
        watched.phase = state.phase
        watched.queued = len(state.queued) + len(state.lock_waiters)
        for node in changed:
            if node.type == NodeType.POD and not node.done:
                watched.ready_at.setdefault(node.id, node.started_at or now)
            if node.started_at is not None and node.id not in watched.started:
                watched.started.add(node.id)
                metrics.nodes_started().add(1, {names.NODE_TYPE: node.type})
            if node.done and node.finished_at is not None and watched.emitted.get(node.id) != node.finished_at:
                watched.emitted[node.id] = node.finished_at
                self._node_finished(state, watched, node)
        if state.done:
            self._workflow_finished(state, watched)

    def _node_finished(self, state: WorkflowState, watched: _Watched, node: Node) -> None:
        metrics.nodes_finished().add(1, {names.NODE_TYPE: node.type, names.PHASE: node.phase})
        finished = node.finished_at or self._clock()
        started = min(watched.ready_at.pop(node.id, finished), node.started_at or finished)
        if node.type == NodeType.POD:
            metrics.step_duration().record(
                max(0.0, finished - (node.started_at or finished)), {names.PHASE: node.phase}
            )
            watched.awaiting_start.pop(node.id, None)
        if not tracing_enabled():
            return  # emit_span would drop it: spare building its ids and attributes for every node
        attributes: dict[str, str | int] = {
            names.WORKFLOW_NAME: state.name,
            names.WORKFLOW_UID: state.uid,
            names.NODE_ID: node.id,
            names.NODE_NAME: node.name,
            names.NODE_TYPE: node.type,
            names.TEMPLATE: node.template_name,
            names.PHASE: node.phase,
        }
        if node.type == NodeType.POD:
            attributes[names.ATTEMPT] = node.attempt
        emit_span(
            names.node_span_name(node.display_name or node.name),
            trace_id=watched.trace.trace_id,
            span_id=node_span_id(watched.trace.trace_id, node.id),
            parent=watched.trace.parent_of(node),
            start=started,
            end=finished,
            attributes=attributes,
            error=(node.message or node.phase) if node.phase in _FAILED else None,
        )

    def _workflow_finished(self, state: WorkflowState, watched: _Watched) -> None:
        del self._watched[state.name]
        metrics.workflows_finished().add(1, {names.PHASE: state.phase})
        record = watched.trace
        previous = record.previous_root
        emit_span(
            names.workflow_span_name(state.name),
            trace_id=record.trace_id,
            span_id=root_span_id(record.trace_id),
            parent=None,
            start=record.started_at,
            end=state.finished_at or self._clock(),
            attributes={names.WORKFLOW_NAME: state.name, names.WORKFLOW_UID: state.uid, names.PHASE: state.phase},
            links=[Link(previous)] if previous is not None else [],
            error=(state.message or state.phase) if state.phase in _FAILED else None,
        )

    # -- steps ------------------------------------------------------------------

    @contextmanager
    def launching(self, spec: LaunchSpec, runtime: str) -> Iterator[None]:
        """Around runtime.launch: the `queue` span (ready until now), then the `launch` span.

        The node's span is the current context meanwhile, so that whatever the runtime starts for
        the step (a task watching a container, say) carries the node's context, not the caller's.
        """
        watched = self._watched.get(spec.workflow)
        if watched is None:
            yield
            return
        watched.awaiting_start.setdefault(spec.node_id, set()).add(spec.attempt)
        parent = watched.trace.node(spec.node_id)
        with attached(context_with_parent(parent)):
            if not tracing_enabled():
                yield
                return
            with self._launch_spans(spec, runtime, watched, parent):
                yield

    @contextmanager
    def _launch_spans(self, spec: LaunchSpec, runtime: str, watched: _Watched, parent: SpanContext) -> Iterator[None]:
        now = self._clock()
        attributes: dict[str, str | int] = {
            names.WORKFLOW_NAME: spec.workflow,
            names.NODE_ID: spec.node_id,
            names.ATTEMPT: spec.attempt,
        }
        queued_since = watched.ready_at.get(spec.node_id, now)
        start_span_at(names.SPAN_QUEUE, parent, min(queued_since, now), attributes).end(end_time=int(now * 1e9))
        span = start_span_at(names.SPAN_LAUNCH, parent, now, {**attributes, "treadle.runtime": runtime})
        try:
            yield
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
            raise
        finally:
            span.end()

    def step_started(self, workflow: str, node_id: str, attempt: int) -> None:
        """The attempt's executor fetched its context: record how long it took from ready to here."""
        watched = self._watched.get(workflow)
        attempts = watched.awaiting_start.get(node_id) if watched is not None else None
        if watched is None or attempts is None or attempt not in attempts:
            return
        attempts.discard(attempt)
        if not attempts:
            del watched.awaiting_start[node_id]
        ready = watched.ready_at.get(node_id)
        if ready is not None:
            metrics.scheduling_latency().record(max(0.0, self._clock() - ready))

    # -- storage ----------------------------------------------------------------

    def _store(self, name: str, record: WorkflowTrace) -> None:
        self._conn.execute(
            "INSERT INTO scheduler_traces(workflow, trace_id, started_at) VALUES (?, ?, ?) "
            "ON CONFLICT(workflow) DO UPDATE SET trace_id = excluded.trace_id, started_at = excluded.started_at",
            (name, f"{record.trace_id:032x}", record.started_at),
        )

    def _load(self, name: str) -> WorkflowTrace:
        row = self._conn.execute(
            "SELECT trace_id, started_at FROM scheduler_traces WHERE workflow = ?", (name,)
        ).fetchone()
        if row is not None:
            return WorkflowTrace(int(row[0], 16), float(row[1]))
        # Admitted before this table existed, or its row was lost: start a trace now.
        now = self._clock()
        record = WorkflowTrace(new_workflow_trace_id(now), now)
        self._store(name, record)
        return record


def _incoming_trace_id() -> int | None:
    """The trace id of the call being served, if its caller sent one (None when the server span is a root)."""
    span = trace.get_current_span()
    context = span.get_span_context()
    if not context.is_valid:
        return None
    parent = getattr(span, "parent", context)  # SDK spans know their parent; no-op spans are the caller's context
    return context.trace_id if parent is not None else None
