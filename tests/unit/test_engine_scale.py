"""Wide workflows: node ids that collide, and the engine's work per finished step (counted, not timed)."""

from __future__ import annotations

import sqlite3
from typing import Any

from engine_driver import Run

from treadle.config import ServiceAddresses
from treadle.services.scheduler.engine import (
    MemoryNodeTable,
    Node,
    NodePhase,
    WorkflowEngine,
    WorkflowState,
    node_id_for,
)
from treadle.services.scheduler.engine.model import fnv32a
from treadle.services.scheduler.runtimes.base import LaunchSpec
from treadle.services.scheduler.telemetry import SchedulerTelemetry
from treadle.spec.manifest import load_manifest
from treadle.spec.validate import validate_workflow

# Two step names whose nodes' Argo ids are equal in workflow "cw" (fnv32a is 32 bits: among 100,000
# nodes a collision is more likely than not), and two task names likewise.
STEP_A, STEP_B = "s398689", "s1193690"
TASK_A, TASK_B = "s830878", "s1002302"


def test_the_names_used_here_do_collide() -> None:
    assert fnv32a(f"cw[0].{STEP_A}") == fnv32a(f"cw[0].{STEP_B}")
    assert fnv32a(f"cw.{TASK_A}") == fnv32a(f"cw.{TASK_B}")


COLLIDING_STEPS = f"""
kind: Workflow
metadata: {{name: cw}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: {STEP_A}, template: say, arguments: {{parameters: [{{name: text, value: a}}]}}}}
      - {{name: {STEP_B}, template: say, arguments: {{parameters: [{{name: text, value: b}}]}}}}
    - - name: both
        template: say
        arguments:
          parameters: [{{name: text, value: "{{{{steps.{STEP_A}.outputs.result}}}}+{{{{steps.{STEP_B}.outputs.result}}}}"}}]
  - name: say
    inputs: {{parameters: [{{name: text}}]}}
    container: {{image: busybox, command: [echo], args: ["{{{{inputs.parameters.text}}}}"]}}
"""

COLLIDING_TASKS = f"""
kind: Workflow
metadata: {{name: cw}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: {TASK_A}, template: say, arguments: {{parameters: [{{name: text, value: a}}]}}}}
      - {{name: {TASK_B}, template: say, arguments: {{parameters: [{{name: text, value: b}}]}}}}
      - name: both
        dependencies: [{TASK_A}, {TASK_B}]
        template: say
        arguments:
          parameters: [{{name: text, value: "{{{{tasks.{TASK_A}.outputs.result}}}}+{{{{tasks.{TASK_B}.outputs.result}}}}"}}]
  - name: say
    inputs: {{parameters: [{{name: text}}]}}
    container: {{image: busybox, command: [echo], args: ["{{{{inputs.parameters.text}}}}"]}}
"""


def test_steps_whose_ids_collide_are_two_nodes() -> None:
    run = Run(COLLIDING_STEPS).run()
    assert run.phase == NodePhase.SUCCEEDED
    a, b = run.node(STEP_A), run.node(STEP_B)
    assert a.id != b.id
    assert a.id == node_id_for("cw", f"cw[0].{STEP_A}")  # the first keeps Argo's id
    assert run.engine.state.node_ids == {f"cw[0].{STEP_B}": b.id}
    assert run.node("both").outputs["result"] == "a+b"
    assert run.engine.state.progress == "3/3"


def test_dag_tasks_whose_ids_collide_are_two_nodes() -> None:
    run = Run(COLLIDING_TASKS).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.node(TASK_A).id != run.node(TASK_B).id
    assert run.node("both").outputs["result"] == "a+b"


def test_a_colliding_node_is_found_again_after_a_restart() -> None:
    run = Run(COLLIDING_TASKS).start()
    first = run.pending.pop(0)
    run.take(run.engine.complete_pod(first.node_id, first.attempt, NodePhase.SUCCEEDED, {"result": "x"}))
    # What the scheduler stores, loaded into a fresh engine (as Scheduler._load does after a restart).
    state = WorkflowState.from_record(run.engine.state.to_record())
    nodes = [Node.from_record(n.to_record()) for n in run.table.all()]
    table = MemoryNodeTable(nodes)
    for node in nodes:
        parent = table.get(node.parent_id) if node.parent_id else None
        if parent is not None:
            parent.children.append(node.id)
    spec = validate_workflow(load_manifest(COLLIDING_TASKS))["spec"]
    engine = WorkflowEngine(state, spec, table)
    engine.start()
    launches = list(run.pending)
    finished: dict[str, Any] = {}
    while launches:
        launch = launches.pop(0)
        node = table.get(launch.node_id)
        assert node is not None
        text = engine.step_context(launch.node_id)["container"]["args"][-1]
        finished[node.display_name] = text
        decisions = engine.complete_pod(launch.node_id, launch.attempt, NodePhase.SUCCEEDED, {"result": text})
        assert decisions is not None
        launches += decisions.launches
    assert engine.state.phase == NodePhase.SUCCEEDED
    assert sorted(n.display_name for n in table.all() if n.type == "Pod") == sorted([TASK_A, TASK_B, "both"])
    results = {n.display_name: n.outputs.get("result") for n in table.all()}
    assert results["both"] in ("x+b", "a+x")  # whichever task finished before the restart said x


FAN = """
kind: Workflow
metadata: {{name: fan}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: fan, template: add, withSequence: {{count: "{width}"}}, arguments: {{parameters: [{{name: n, value: "{{{{item}}}}"}}]}}}}
      - {{name: sum, dependencies: [fan], template: add, arguments: {{parameters: [{{name: n, value: "{{{{tasks.fan.outputs.result}}}}"}}]}}}}
  - name: add
    inputs: {{parameters: [{{name: n}}]}}
    container: {{image: busybox, command: [sh, -c], args: ["echo {{{{inputs.parameters.n}}}}"]}}
"""


class CountingTable(MemoryNodeTable):
    """A node table that counts what the engine asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = self.puts = self.scans = 0

    def get(self, node_id: str) -> Node | None:
        self.gets += 1
        return super().get(node_id)

    def put(self, node: Node) -> None:
        self.puts += 1
        super().put(node)

    def all(self) -> Any:
        self.scans += 1
        return super().all()


def _fan_operations(width: int, window: int) -> tuple[float, int]:
    """(table reads and writes per completed step, whole-table scans while steps completed) for a fan of width."""
    spec = validate_workflow(load_manifest(FAN.format(width=width)))["spec"]
    table = CountingTable()
    engine = WorkflowEngine(WorkflowState("fan", "uid"), spec, table, window=window)
    launches = list(engine.start().launches)
    table.gets = table.puts = table.scans = 0
    steps = 0
    while launches:
        launch = launches.pop(0)
        decisions = engine.complete_pod(launch.node_id, launch.attempt, NodePhase.SUCCEEDED, {"result": "1"})
        assert decisions is not None
        launches += decisions.launches
        steps += 1
    assert engine.state.phase == NodePhase.SUCCEEDED
    assert steps == width + 1
    # The fan-in's aggregate reads every child once; that is the fan-in's work, not the per-step cost.
    return (table.gets + table.puts - width) / steps, table.scans


def test_work_per_finished_step_does_not_grow_with_the_fan() -> None:
    small, small_scans = _fan_operations(1000, window=16)
    large, large_scans = _fan_operations(8000, window=16)
    assert small_scans == large_scans == 0
    # About 22 reads and writes per step, whatever the width (an O(width) scan would add thousands).
    assert abs(large - small) < 1, (small, large)
    assert large < 30, large


def _spec(node_id: str, attempt: int = 0) -> LaunchSpec:
    return LaunchSpec(
        workflow="wf", workflow_uid="uid", node_id=node_id, pod_name=node_id, attempt=attempt, token="t",
        services=ServiceAddresses(),
    )  # fmt: skip


class CountingDict(dict[str, set[int]]):
    iterations = 0

    def __iter__(self) -> Any:
        CountingDict.iterations += 1
        return super().__iter__()

    def values(self) -> Any:
        CountingDict.iterations += 1
        return super().values()

    def items(self) -> Any:
        CountingDict.iterations += 1
        return super().items()


def test_a_finished_step_does_not_scan_the_launched_ones() -> None:
    telemetry = SchedulerTelemetry(sqlite3.connect(":memory:"))
    state = WorkflowState("wf", "uid", phase=NodePhase.RUNNING)
    telemetry.admitted("wf", None)
    telemetry.loaded(state, [])
    watched = next(iter(telemetry.watched()))
    watched.awaiting_start = CountingDict()
    pods = [Node(f"wf-{i}", f"wf.p{i}", f"p{i}", "Pod", "t", phase=NodePhase.RUNNING) for i in range(2000)]
    for pod in pods:
        with telemetry.launching(_spec(pod.id), "local"):
            pass
    telemetry.step_started("wf", pods[0].id, 0)
    assert watched.awaiting == 1999
    CountingDict.iterations = 0
    for pod in pods[1:]:
        pod.phase, pod.started_at, pod.finished_at = NodePhase.SUCCEEDED, 1.0, 2.0
        telemetry.committed(state, [pod])
    assert CountingDict.iterations == 0
    assert watched.awaiting == 0 and not watched.awaiting_start


def _pod(i: int, phase: str = NodePhase.SUCCEEDED) -> Node:
    return Node(
        f"wf-{i}", f"wf.p({i})", f"p({i})", "Pod", "t", phase=phase, parent_id="wf", seq=i,
        inputs={"parameters": [{"name": "n", "value": str(i)}]}, outputs={"result": str(i), "exitCode": "0"},
        started_at=1.5, finished_at=2.25,
    )  # fmt: skip


def test_a_large_table_packs_its_finished_pods_and_gives_them_back_unchanged() -> None:
    table = MemoryNodeTable(pack_above=4)
    table.put(Node("wf", "wf", "wf", "DAG", "main", phase=NodePhase.RUNNING))
    pods = [_pod(i) for i in range(6)] + [_pod(6, NodePhase.RUNNING)]
    for pod in pods:
        table.put(pod)
    records = {p.id: (p.to_record(), p.rev) for p in pods}
    assert table.take_dirty()[0] is table.get("wf")  # the dirty nodes themselves, then packed
    assert table.packed == 6  # the running pod and the DAG stay as they are
    assert [n.id for n in table.all()] == ["wf"] + [p.id for p in pods]  # order kept
    copy = table.read("wf-3")
    assert copy is not None and (copy.to_record(), copy.rev) == records["wf-3"]
    assert table.packed == 6  # read does not unpack for good
    first = table.get("wf-3")
    assert first is not None and first is not copy and table.get("wf-3") is first  # one object per event
    assert (first.to_record(), first.rev) == records["wf-3"]
    assert table.packed == 5
    assert table.take_dirty() == [] and table.packed == 6  # packed again once the event is over
    first.message = "changed"  # a stale copy: changes go through put
    unpacked = table.get("wf-3")
    assert unpacked is not None and unpacked.message == ""
    unpacked.message = "changed"
    table.put(unpacked)
    assert [n.message for n in table.take_dirty()] == ["changed"]
    assert table.read("wf-3").message == "changed"  # type: ignore[union-attr]
    table.delete("wf-4")
    assert table.get("wf-4") is None and table.take_deleted() == ["wf-4"]


def test_a_table_packs_nothing_below_its_threshold_or_without_one() -> None:
    for table in (MemoryNodeTable([_pod(i) for i in range(10)], pack_above=10), MemoryNodeTable([_pod(0)])):
        table.take_dirty()
        assert table.packed == 0


def test_a_wide_fan_with_packed_nodes_computes_the_same_outputs() -> None:
    def run(pack_above: int) -> tuple[dict[str, Any], int]:
        spec = validate_workflow(load_manifest(FAN.format(width=300)))["spec"]
        table = MemoryNodeTable(pack_above=pack_above)
        engine = WorkflowEngine(WorkflowState("fan", "uid"), spec, table, window=32)
        launches = list(engine.start().launches)
        table.take_dirty()
        most_live = 0
        while launches:
            launch = launches.pop(0)
            text = engine.step_context(launch.node_id)["container"]["args"][-1].split()[-1]
            decisions = engine.complete_pod(launch.node_id, launch.attempt, NodePhase.SUCCEEDED, {"result": text})
            assert decisions is not None
            launches += decisions.launches
            table.take_dirty()
            most_live = max(most_live, len(table) - table.packed)
        assert engine.state.phase == NodePhase.SUCCEEDED
        return {n.name: (n.phase, n.outputs, n.inputs) for n in table.all()}, most_live

    packed, live_packed = run(pack_above=16)
    plain, live_plain = run(pack_above=10_000)
    assert packed == plain
    assert live_plain == 303 and live_packed <= 40  # the window's pods and the three composite nodes


def _parallel_fan_reads(window: int, where: str) -> float:
    """Table reads per finished step of a 3,000-pod fan limited to 8 running pods, by the workflow or its DAG."""
    spec = validate_workflow(load_manifest(FAN.format(width=3000)))["spec"]
    if where == "workflow":
        spec["parallelism"] = 8
    else:
        spec["templates"][0]["parallelism"] = 8
    table = CountingTable()
    engine = WorkflowEngine(WorkflowState("fan", "uid"), spec, table, window=window)
    launches = list(engine.start().launches)
    assert len(launches) == 8 and len(engine.state.queued) == min(window, 3000) - 8
    table.gets = 0
    steps = 0
    while launches:
        launch = launches.pop(0)
        decisions = engine.complete_pod(launch.node_id, launch.attempt, NodePhase.SUCCEEDED, {"result": "1"})
        assert decisions is not None
        assert len(decisions.launches) <= 1
        launches += decisions.launches
        steps += 1
    assert engine.state.phase == NodePhase.SUCCEEDED and steps == 3001
    return (table.gets - 3000) / steps


def test_a_long_queue_is_not_rescanned_after_every_step() -> None:
    # Pods held back by parallelism wait in a queue as long as the window; each finished pod frees
    # one slot, which must not cost a look at every waiting pod.
    for where in ("workflow", "dag"):
        short, long = _parallel_fan_reads(64, where), _parallel_fan_reads(2048, where)
        assert long < short + 2 and long < 40, (where, short, long)


class CountingList(list[str]):
    """A children list that counts the elements looked at by `in` and by iteration."""

    visits = 0

    def __contains__(self, item: object) -> bool:
        CountingList.visits += len(self)
        return super().__contains__(item)

    def __iter__(self) -> Any:
        CountingList.visits += len(self)
        return super().__iter__()


class ListCountingTable(MemoryNodeTable):
    def put(self, node: Node) -> None:
        if not isinstance(node.children, CountingList):
            node.children = CountingList(node.children)
        super().put(node)


def test_retrying_a_wide_loop_reuses_its_children_in_linear_time() -> None:
    width = 3000
    spec = validate_workflow(load_manifest(FAN.format(width=width)))["spec"]
    table = ListCountingTable()
    engine = WorkflowEngine(WorkflowState("fan", "uid"), spec, table)
    launches = list(engine.start().launches)
    while launches:
        launch = launches.pop(0)
        failed = table.get(launch.node_id).display_name == "fan(7:7)"  # type: ignore[union-attr]
        phase = NodePhase.FAILED if failed else NodePhase.SUCCEEDED
        decisions = engine.complete_pod(launch.node_id, launch.attempt, phase, {"result": "1"})
        assert decisions is not None
        launches += decisions.launches
    assert engine.state.phase == NodePhase.FAILED
    CountingList.visits = 0
    decisions = engine.retry_failed()
    assert [table.get(launch.node_id).display_name for launch in decisions.launches] == ["fan(7:7)"]  # type: ignore[union-attr]
    group = next(n for n in table.all() if n.type == "TaskGroup")
    assert len(group.children) == width
    assert CountingList.visits < 10 * width, CountingList.visits  # a scan per reused child: ~width² / 2


class ScanningEngine(WorkflowEngine):
    """The engine with the queue pass it had before: every waiting pod asked of `_can_start`."""

    def _start_queued(self) -> None:
        waiting, self.state.queued = self.state.queued, []
        for pod_id in waiting:
            pod = self.nodes.get(pod_id)
            if pod is None or pod.done:
                continue
            if self.state.shutdown:
                self._launch(pod)
            elif self._can_start(pod):
                self._start_pod(pod)
            else:
                self.state.queued.append(pod_id)


NESTED_LIMITS = """
kind: Workflow
metadata: {{name: lim}}
spec:
  entrypoint: main
  {workflow_limit}
  templates:
  - name: main
    parallelism: {outer}
    steps:
    - - {{name: a, template: inner, withSequence: {{count: "3"}}, arguments: {{parameters: [{{name: g, value: "a{{{{item}}}}"}}]}}}}
      - {{name: b, template: inner, withSequence: {{count: "2"}}, arguments: {{parameters: [{{name: g, value: "b{{{{item}}}}"}}]}}}}
      - {{name: c, template: leaf, withSequence: {{count: "7"}}, arguments: {{parameters: [{{name: n, value: "c{{{{item}}}}"}}]}}}}
  - name: inner
    inputs: {{parameters: [{{name: g}}]}}
    parallelism: {inner}
    dag:
      tasks:
      - {{name: x, template: leaf, withSequence: {{count: "9"}}, arguments: {{parameters: [{{name: n, value: "{{{{inputs.parameters.g}}}}-{{{{item}}}}"}}]}}}}
      - {{name: y, template: leaf, dependencies: [x], arguments: {{parameters: [{{name: n, value: "{{{{inputs.parameters.g}}}}-y"}}]}}}}
  - name: leaf
    inputs: {{parameters: [{{name: n}}]}}
    container: {{image: busybox, command: [echo], args: ["{{{{inputs.parameters.n}}}}"]}}
"""


def _launch_order(engine_class: type[WorkflowEngine], manifest: str, finish_order: str) -> list[str]:
    spec = validate_workflow(load_manifest(manifest))["spec"]
    table = MemoryNodeTable()
    engine = engine_class(WorkflowState("lim", "uid"), spec, table, window=16)
    running = list(engine.start().launches)
    order = [table.get(launch.node_id).name for launch in running]  # type: ignore[union-attr]
    turn = 0
    while running:
        turn += 1
        # Finish the oldest, the newest or one in the middle, so that slots free up in many places.
        index = {"fifo": 0, "lifo": -1, "mixed": (turn * 7) % len(running)}[finish_order]
        launch = running.pop(index)
        decisions = engine.complete_pod(launch.node_id, launch.attempt, NodePhase.SUCCEEDED, {"result": "1"})
        assert decisions is not None
        running += decisions.launches
        order += [table.get(launch.node_id).name for launch in decisions.launches]  # type: ignore[union-attr]
    assert engine.state.phase == NodePhase.SUCCEEDED
    return order


def test_the_queue_pass_starts_the_same_pods_in_the_same_order_as_a_full_scan() -> None:
    cases = 0
    for workflow_limit in ("", "parallelism: 4"):
        for outer, inner in ((3, 2), (5, 1), (2, 4), (100, 3)):
            manifest = NESTED_LIMITS.format(workflow_limit=workflow_limit, outer=outer, inner=inner)
            for finish_order in ("fifo", "lifo", "mixed"):
                expected = _launch_order(ScanningEngine, manifest, finish_order)
                assert _launch_order(WorkflowEngine, manifest, finish_order) == expected
                assert len(expected) == 3 * 10 + 2 * 10 + 7
                cases += 1
    assert cases == 24
