"""The scheduler's core: engines for running workflows, their persistence, and the runtime.

It imports no grpc. The servicer converts messages and calls in here; the
runtime's exit callback calls in here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from treadle.auth import StepTokens
from treadle.config import ServiceAddresses
from treadle.errors import FailedPrecondition, NotFound
from treadle.services.artifacts.gc_plan import plan_artifact_gc
from treadle.services.scheduler.artifact_calls import (
    ArtifactCalls,
    NoArtifactService,
    gc_workflow,
    wants_artifact_gc,
)
from treadle.services.scheduler.engine import (
    PACK_ABOVE,
    Decisions,
    Launch,
    MemoryNodeTable,
    Node,
    NodePhase,
    WorkflowEngine,
    WorkflowState,
)
from treadle.services.scheduler.large_values import KnownValues, fill_all, fill_values, has_references
from treadle.services.scheduler.locks import SqliteLocks
from treadle.services.scheduler.repository import SchedulerRepository, SqliteMemoCache, StoredRun
from treadle.services.scheduler.runtimes.base import LaunchSpec, Runtime, StepDaemoned, StepExit
from treadle.services.scheduler.telemetry import SchedulerTelemetry
from treadle.workflow.v1 import workflow_pb2

log = logging.getLogger(__name__)

# Seconds between two snapshots of a running workflow sent to one watcher.
WATCH_INTERVAL = 0.1


@dataclass
class Snapshot:
    state: WorkflowState
    nodes: list[Node]
    version: int


@dataclass
class Run:
    """A workflow the scheduler is driving, held in memory until it finishes."""

    engine: WorkflowEngine
    table: MemoryNodeTable
    version: int
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    # Its large values, so that where they are passed on they are stored as references too (large_values.py).
    values: KnownValues = field(default_factory=KnownValues)

    def snapshot(self, *, with_nodes: bool = True) -> Snapshot:
        return Snapshot(self.engine.state, list(self.table.all()) if with_nodes else [], self.version)


class Scheduler:
    def __init__(
        self, repo: SchedulerRepository, runtime: Runtime, tokens: StepTokens, artifacts: ArtifactCalls | None = None
    ) -> None:
        self.repo = repo
        self.runtime = runtime
        self.tokens = tokens
        # Large values' text and artifact GC (artifact_calls.py).
        self.artifacts: ArtifactCalls = artifacts or NoArtifactService()
        self.memo = SqliteMemoCache(repo.conn)
        self.locks = SqliteLocks(repo.conn)
        # Traces, node spans and scheduling metrics (telemetry.py); reads the engine's records after each commit.
        self.telemetry = SchedulerTelemetry(repo.conn)
        self.addresses = ServiceAddresses()
        self._runs: dict[str, Run] = {}
        # Finished runs keep their Condition briefly so watchers see the final state.
        self._closing: dict[str, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, addresses: ServiceAddresses) -> None:
        """Start the runtime and resume every workflow left unfinished by a previous process."""
        self.addresses = addresses
        await self.runtime.start(self._on_exit, on_daemoned=self._on_daemoned)
        for stored in self.repo.unfinished():
            run = self._load(stored)
            await self._fill_large_values(run)
            decisions = run.engine.start()
            for pod in run.engine.unfinished_pods():
                relaunch = run.engine.relaunch(pod.id)
                if relaunch is not None:
                    decisions.launches.append(relaunch)
            decisions.timers.extend(run.engine.armed_timers())
            log.info("resuming workflow %s with %d step(s) to launch", stored.name, len(decisions.launches))
            await self._commit(run, decisions)

    async def stop(self) -> None:
        await self.runtime.close()

    # -- calls from the services ---------------------------------------------

    async def start_workflow(
        self,
        name: str,
        uid: str,
        namespace: str,
        created_at: float | None,
        spec: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Admit a workflow (idempotent per uid); False when it was admitted before.

        Durable before it returns: the run, its trace and its first save skip their own fsync
        and share one with the calls in flight meanwhile (group commit, treadle.store.durability).
        """
        state = WorkflowState(name=name, uid=uid)
        stored = StoredRun(name, uid, namespace or "default", created_at, spec, state, 1, metadata or {})
        group = self.repo.group
        with group.deferring():
            with group.write(), self.repo.transaction():
                inserted = self.repo.insert(stored)
                if inserted:
                    self.telemetry.admitted(name, created_at)
            if inserted:
                run = self._load(stored)
                await self._commit(run, run.engine.start())
            else:
                existing = self.repo.load(name)
                if existing is not None and existing.uid != uid:
                    raise FailedPrecondition(f"workflow {name!r} exists with another uid", subject=f"workflows/{name}")
        # Also when it was admitted before: that call may still be waiting for its sync.
        await group.sync()
        return inserted

    async def complete_step(
        self, workflow: str, node_id: str, attempt: int, phase: str, outputs: dict[str, Any], message: str
    ) -> bool:
        run = self._runs.get(workflow)
        if run is None:
            if self.repo.load(workflow) is None:
                raise NotFound("workflow", workflow)
            return False  # finished already
        if has_references(outputs):
            # The engine works with the text; storage and status keep the references (large_values.py).
            # An error here reaches OutputService, which reports it to the executor to try again.
            await fill_values(outputs, self.artifacts.load_value)
            if self._runs.get(workflow) is not run:
                return False  # finished or deleted meanwhile
            run.values.remember(outputs)
        decisions = run.engine.complete_pod(node_id, attempt, phase, outputs, message)
        if decisions is None:
            return False
        # Concurrent completions share one fsync (group commit). The next steps are launched before
        # it, so after a power loss a step may run twice (once before, once when the run resumes).
        group = self.repo.group
        with group.deferring():
            await self._commit(run, decisions)
        await group.sync()
        return True

    async def control(self, name: str, verb: str, **kwargs: Any) -> Snapshot:
        """suspend, resume, stop, terminate or set_node a running workflow."""
        run = self._runs.get(name)
        if run is None and verb == "retry_failed":
            stored = self.repo.load(name)
            if stored is None:
                raise NotFound("workflow", name)
            run = self._load(stored)
            await self._fill_large_values(run)
        if run is None:
            stored = self.repo.load(name)
            if stored is None:
                raise NotFound("workflow", name)
            raise FailedPrecondition(
                f"cannot {verb.replace('_', ' ')} workflow {name!r}: it has already {stored.state.phase.lower()}",
                subject=f"workflows/{name}",
            )
        engine = run.engine
        try:
            if verb == "suspend":
                engine.suspend()
                decisions = Decisions()
            else:
                decisions = getattr(engine, verb)(**kwargs)
        except Exception:
            if run.engine.state.done and self._runs.get(name) is run:
                del self._runs[name]
            raise
        if verb == "retry_failed":
            self.telemetry.retried(name)
        await self._commit(run, decisions)
        return run.snapshot()

    def step_context(self, workflow: str, node_id: str, attempt: int) -> tuple[dict[str, Any], Node, WorkflowState]:
        run = self._runs.get(workflow)
        node = run.table.get(node_id) if run else None
        if run is None or node is None:
            raise NotFound("step", f"{workflow}/{node_id}")
        if node.attempt != attempt or node.done:
            raise FailedPrecondition(
                f"attempt {attempt} of step {node.name!r} is not the current one", subject=f"{workflow}/{node_id}"
            )
        self.telemetry.step_started(workflow, node_id, attempt)
        return run.engine.step_context(node_id), node, run.engine.state

    def artifact_repository(self, workflow: str) -> str:
        """The running workflow's spec.artifactRepositoryRef.key; "" for the server's default repository."""
        run = self._runs.get(workflow)
        if run is None:
            raise NotFound("workflow", workflow)
        return _repository_key(run)

    def snapshot(self, name: str, *, with_nodes: bool = True) -> Snapshot:
        run = self._runs.get(name)
        if run is not None:
            return run.snapshot(with_nodes=with_nodes)
        stored = self.repo.load(name)
        if stored is None:
            raise NotFound("workflow", name)
        nodes = self.repo.load_nodes(name) if with_nodes else []
        return Snapshot(stored.state, nodes, stored.resource_version)

    def states(self, names: list[str]) -> dict[str, WorkflowState]:
        found = self.repo.states([n for n in names if n not in self._runs])
        found.update({n: self._runs[n].engine.state for n in names if n in self._runs})
        return found

    async def watch(self, name: str) -> AsyncIterator[Snapshot]:
        """The current snapshot, then the latest one after changes, ending once the workflow is final."""
        last = -1
        sent_at = 0.0
        while True:
            run = self._runs.get(name) or self._closing.get(name)
            if run is None:
                snap = self.snapshot(name)
                if snap.version != last:
                    yield snap
                if snap.state.done:
                    return
                await asyncio.sleep(0.05)  # admitted but not yet loaded here
                continue
            async with run.changed:
                await run.changed.wait_for(lambda run=run, last=last: run.version != last)  # type: ignore[misc]
                # Coalesce bursts: a snapshot holds every node, so building one per step of a
                # large workflow would cost more than running it. The final state is never held back.
                pause = WATCH_INTERVAL - (time.monotonic() - sent_at)
                if pause > 0 and not run.engine.state.done:
                    with contextlib.suppress(TimeoutError):
                        finished = run.changed.wait_for(lambda run=run: run.engine.state.done)  # type: ignore[misc]
                        await asyncio.wait_for(finished, pause)
            snap = run.snapshot()
            last = snap.version
            sent_at = time.monotonic()
            yield snap
            if snap.state.done:
                return

    async def delete(self, name: str) -> None:
        run = self._runs.pop(name, None)
        if run is not None:
            for pod in run.engine.unfinished_pods():
                await self.runtime.cancel(name, pod.id, pod.attempt, "workflow deleted")
            run.engine.state.phase = NodePhase.FAILED
            run.engine.state.message = "workflow deleted"
            run.version += 1
            async with run.changed:
                run.changed.notify_all()
        elif self.repo.load(name) is None:
            raise NotFound("workflow", name)
        self.repo.delete(name)
        self.telemetry.forget(name)
        self.locks.release_workflow(name)
        self.wake_lock_waiters()
        await self.runtime.cleanup(name)

    # -- internals ------------------------------------------------------------

    def _load(self, stored: StoredRun) -> Run:
        table = MemoryNodeTable(self.repo.load_nodes(stored.name), pack_above=PACK_ABOVE)
        engine = WorkflowEngine(
            stored.state,
            stored.spec,
            table,
            namespace=stored.namespace,
            created_at=stored.created_at,
            memo=self.memo,
            locks=self.locks,
            labels=stored.metadata.get("labels") or {},
            annotations=stored.metadata.get("annotations") or {},
        )
        run = Run(engine=engine, table=table, version=stored.resource_version)
        self._runs[stored.name] = run
        self.telemetry.loaded(stored.state, table.all())
        return run

    async def _commit(self, run: Run, decisions: Decisions) -> None:
        """Persist what the engine changed, wake watchers, then act on the decisions."""
        launches = decisions.launches
        changed = run.table.take_dirty()
        for node in changed:
            run.values.add_references(node.inputs)
            run.values.add_references(node.outputs)
        run.values.add_references(run.engine.state.outputs)
        run.version = self.repo.save(run.engine.state, changed, run.table.take_deleted())
        self.telemetry.committed(run.engine.state, changed)
        async with run.changed:
            run.changed.notify_all()
        name = run.engine.state.name
        delivers_context = getattr(self.runtime, "delivers_context", False)
        for cancel in decisions.cancels:
            await self.runtime.cancel(name, cancel.node_id, cancel.attempt, cancel.reason)
        for launch in launches:
            spec = self._launch_spec(run, launch)
            with self.telemetry.launching(spec, self.runtime.name):
                await self.runtime.launch(spec)
            if delivers_context:
                self.telemetry.step_started(name, spec.node_id, spec.attempt)
        loop = asyncio.get_running_loop()
        for timer in decisions.timers:
            delay = max(0.0, timer.at - time.time())
            loop.call_later(delay, self._fire_timer, name, timer.key)
        if decisions.locks_released:
            asyncio.get_running_loop().call_soon(self.wake_lock_waiters)
        if run.engine.state.done and self._runs.get(name) is run:
            del self._runs[name]
            self._closing[name] = run
            asyncio.get_running_loop().call_later(5.0, self._closing.pop, name, None)
            self._start_artifact_gc(run)
            await self.runtime.cleanup(name)

    def _launch_spec(self, run: Run, launch: Launch) -> LaunchSpec:
        state = run.engine.state
        node = run.table.get(launch.node_id)
        assert node is not None
        return LaunchSpec(
            workflow=state.name,
            workflow_uid=state.uid,
            node_id=node.id,
            pod_name=node.pod_name,
            attempt=launch.attempt,
            token=self.tokens.issue(state.name, node.id, launch.attempt),
            services=self.addresses,
            template=run.engine.step_context(node.id),
            artifact_repository=_repository_key(run),
            deadline_seconds=launch.deadline_seconds,
            traceparent=self.telemetry.traceparent(state.name, node.id),
            volumes=list(run.engine.spec.get("volumes") or []),
            daemons=any(template.get("daemon") for template in run.engine.templates.values()),
        )

    async def _fill_large_values(self, run: Run) -> None:
        """Read back the text of the large values a loaded run references (its records keep only references)."""
        nodes = list(run.table.all())
        blocks = [node.outputs for node in nodes] + [node.inputs for node in nodes] + [run.engine.state.outputs]
        try:
            read = await fill_all(blocks, self.artifacts.load_value)
        except Exception:
            # The run goes on; a step that substitutes a value not read back fails naming the reference.
            log.exception("reading the large values of workflow %s failed", run.engine.state.name)
            return
        for block in blocks:
            run.values.remember(block)
        if read:
            log.info("read %d large value(s) of workflow %s", read, run.engine.state.name)

    def _start_artifact_gc(self, run: Run) -> None:
        """artifactGC OnWorkflowCompletion, in the background: the workflow is final whatever GC does."""
        if not wants_artifact_gc(run.engine.spec):
            return
        workflow = gc_workflow(run.engine.state, run.engine.spec, run.table.all())
        task = asyncio.get_running_loop().create_task(self._artifact_gc(workflow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _artifact_gc(self, workflow: workflow_pb2.Workflow) -> None:
        name = workflow.metadata.name
        try:
            plan = plan_artifact_gc(workflow, "OnWorkflowCompletion")
            if plan.empty:
                return
            deleted = await self.artifacts.run_gc(plan)
            log.info("artifact GC of workflow %s on completion: %d object(s) deleted", name, deleted)
        except Exception:
            # Deleting the workflow runs the completion plan again (admission), so nothing stays behind for good.
            log.exception("artifact GC of workflow %s on completion failed", name)

    def wake_lock_waiters(self) -> None:
        for name, run in list(self._runs.items()):
            if run.engine.state.lock_waiters or run.engine.state.waiting_for_lock:
                task = asyncio.get_running_loop().create_task(self._retry_locks(name))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _retry_locks(self, name: str) -> None:
        run = self._runs.get(name)
        if run is None:
            return
        try:
            await self._commit(run, run.engine.locks_released())
        except Exception:
            log.exception("retrying locks of workflow %s failed", name)

    def _fire_timer(self, name: str, key: str) -> None:
        task = asyncio.get_running_loop().create_task(self._on_timer(name, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_timer(self, name: str, key: str) -> None:
        run = self._runs.get(name)
        if run is None:
            return
        try:
            await self._commit(run, run.engine.on_timer(key))
        except Exception:
            log.exception("timer %s of workflow %s failed", key, name)

    async def _on_daemoned(self, event: StepDaemoned) -> None:
        """A daemon step is up: the steps after it may start and reach it at event.ip."""
        run = self._runs.get(event.workflow)
        if run is None:
            return
        decisions = run.engine.daemon_started(event.node_id, event.attempt, event.ip)
        if decisions is not None:
            await self._commit(run, decisions)

    async def _on_exit(self, exit: StepExit) -> None:
        if exit.reported:
            return
        message = exit.message or "the executor exited without reporting"
        log.warning("step %s/%s attempt %d: %s", exit.workflow, exit.node_id, exit.attempt, message)
        with contextlib.suppress(NotFound):  # deleted while the step ran
            await self.complete_step(exit.workflow, exit.node_id, exit.attempt, NodePhase.ERROR, {}, message)


def _repository_key(run: Run) -> str:
    return str((run.engine.spec.get("artifactRepositoryRef") or {}).get("key") or "")
