"""One trace per workflow, across admission, the scheduler, the executor and back, and across a restart.

The server runs as a subprocess with the OTEL_* variables set, so it and the
executor host it starts export over OTLP/gRPC to a real receiver in this process.
(The subprocess is started and stopped in a thread: the receiver must keep
answering in this event loop meanwhile, above all while the server flushes.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from served import ServedTreadle

from treadle.client.client import TreadleClient
from treadle.telemetry.receiver import OtlpTraceReceiver, ReceivedSpan
from treadle.workflow.v1 import workflow_pb2 as wf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: traced}
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - {name: make, template: make}
          - name: use
            template: use
            dependencies: [make]
            arguments: {artifacts: [{name: data, from: "{{tasks.make.outputs.artifacts.data}}"}]}
          - {name: last, template: last, dependencies: [use]}
    - name: make
      container: {image: busybox, command: [sh, -c], args: ["echo hello > /tmp/data.txt; echo 42 > /tmp/answer.txt"]}
      outputs:
        artifacts: [{name: data, path: /tmp/data.txt}]
        parameters: [{name: answer, valueFrom: {path: /tmp/answer.txt}}]
    - name: use
      inputs: {artifacts: [{name: data, path: /tmp/in.txt}]}
      container: {image: busybox, command: [cat, /tmp/in.txt]}
    - name: last
      container: {image: busybox, command: [echo, done]}
"""

SLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: restarted}
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: slow, template: slow}
        - - {name: quick, template: quick}
    - name: slow
      container: {image: busybox, command: [sh, -c, "sleep 1.5"]}
    - name: quick
      container: {image: busybox, command: [echo, quick]}
"""

# opentelemetry.proto Span.SpanKind.
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
POD_PHASES = {"queue", "launch", "executor.init", "executor.main", "executor.wait", "outputs.report"}


def otel_env(receiver: OtlpTraceReceiver) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


def root_of(spans: list[ReceivedSpan], workflow: str) -> ReceivedSpan | None:
    return next((s for s in spans if s.name == f"workflow {workflow}"), None)


class Tree:
    """The spans of one trace, by id, with helpers to walk parent links."""

    def __init__(self, spans: list[ReceivedSpan], trace_id: str) -> None:
        self.spans = [s for s in spans if s.trace_id == trace_id]
        self.by_id = {s.span_id: s for s in self.spans}
        assert len(self.by_id) == len(self.spans), "span ids repeat within the trace"

    def one(self, name: str, **attributes: object) -> ReceivedSpan:
        found = self.all(name, **attributes)
        assert len(found) == 1, f"{name} {attributes}: {len(found)} spans"
        return found[0]

    def all(self, name: str, **attributes: object) -> list[ReceivedSpan]:
        return [
            s for s in self.spans if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
        ]

    def children(self, parent: ReceivedSpan) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.parent_span_id == parent.span_id]

    def child(self, parent: ReceivedSpan, name: str) -> ReceivedSpan:
        found = [s for s in self.children(parent) if s.name == name]
        assert len(found) == 1, f"{name} under {parent.name}: {[s.name for s in self.children(parent)]}"
        return found[0]


def test_a_dag_run_is_one_trace_with_every_phase_in_place(tmp_path: Path) -> None:
    async def main() -> list[ReceivedSpan]:
        receiver = await OtlpTraceReceiver.start()
        server = await asyncio.to_thread(ServedTreadle, tmp_path, otel_env(receiver))
        try:
            async with TreadleClient(server.address) as client:
                await client.submit(DAG)
                final = await client.wait("traced", timeout=60)
            assert final.status.phase == wf.WORKFLOW_PHASE_SUCCEEDED, final.status.message
        finally:
            log = await asyncio.to_thread(server.stop)
        try:
            return await receiver.wait_for(
                lambda spans: (
                    root_of(spans, "traced") is not None and sum(s.name == "outputs.report" for s in spans) == 3
                ),
                timeout=20,
            )
        except TimeoutError:
            raise AssertionError(f"spans missing; the server logged:\n{log}") from None
        finally:
            await receiver.stop()

    spans = asyncio.run(main())
    root = root_of(spans, "traced")
    assert root is not None
    tree = Tree(spans, root.trace_id)

    # The root: no parent, submission to completion, served by the scheduler.
    assert root.parent_span_id == ""
    assert root.attributes["treadle.workflow.name"] == "traced"
    assert root.attributes["treadle.phase"] == "Succeeded"
    # Every span of the trace hangs off the root through spans that are present.
    for span in tree.spans:
        if span is not root:
            assert span.parent_span_id in tree.by_id, f"{span.name} has a parent outside the trace"
    # Every span that names the workflow belongs to its one trace.
    assert {s.trace_id for s in spans if s.attributes.get("treadle.workflow.name") == "traced"} == {root.trace_id}

    # Admission: the submission is inside the root, and the hand-off to the scheduler under it.
    submit = tree.one("treadle.admission.v1.AdmissionService/SubmitWorkflow")
    assert submit.parent_span_id == root.span_id
    assert submit.start_ns >= root.start_ns
    assert submit.attributes["rpc.system"] == "grpc"
    assert submit.attributes["rpc.method"] == "SubmitWorkflow"
    assert submit.attributes["rpc.grpc.status_code"] == 0
    start = tree.one("treadle.scheduler.v1.SchedulerService/StartWorkflow")
    assert start.parent_span_id == submit.span_id

    # Nodes: the DAG's node under the root, each task under the DAG's node.
    dag = tree.one("node traced")
    assert dag.parent_span_id == root.span_id
    assert dag.attributes["treadle.node.type"] == "DAG"
    for task in ("make", "use", "last"):
        node = tree.one(f"node {task}")
        assert node.parent_span_id == dag.span_id
        assert node.attributes["treadle.template"] == task
        assert node.attributes["treadle.phase"] == "Succeeded"
        assert node.attributes["treadle.attempt"] == 0
        phases = {s.name for s in tree.children(node)}
        assert phases >= POD_PHASES, f"{task}: {phases}"
        main_span = tree.child(node, "executor.main")
        assert main_span.attributes["process.exit.code"] == 0
        assert main_span.service == "treadle-executor"
        assert node.service == "treadle"
        # Each phase starts no earlier than the node.
        assert all(s.start_ns >= node.start_ns for s in tree.children(node))
        # The executor's calls nest under its phases, the services' calls under theirs.
        report = tree.child(node, "outputs.report")
        reported = tree.child(report, "treadle.outputs.v1.OutputService/ReportStepOutputs")
        assert reported.kind == SPAN_KIND_SERVER and reported.attributes["rpc.system"] == "grpc"
        # OutputService hands the report to the co-hosted scheduler in-process: an INTERNAL span named like
        # the RPC, inside the ReportStepOutputs call.
        completed = tree.child(reported, "treadle.scheduler.v1.SchedulerService/CompleteStep")
        assert completed.kind == SPAN_KIND_INTERNAL
        assert completed.service == "treadle"
        assert completed.attributes["rpc.system"] == "inprocess"
        assert completed.attributes["rpc.service"] == "treadle.scheduler.v1.SchedulerService"
        assert completed.attributes["rpc.method"] == "CompleteStep"
        assert reported.start_ns <= completed.start_ns <= completed.end_ns <= reported.end_ns
        assert tree.children(completed) == []
        # A small log travels with the report: OutputService stores it (PutArtifact, in-process when
        # co-hosted) before it hands the report on, and the executor makes no upload of its own.
        log_upload = tree.child(reported, "artifact.upload main-logs")
        assert log_upload.attributes["treadle.artifact.size_bytes"] >= 0
        assert log_upload.attributes["treadle.artifact.key"].endswith(".log")
        assert log_upload.end_ns <= completed.start_ns
        put = tree.child(log_upload, "treadle.artifacts.v1.ArtifactService/PutArtifact")
        assert put.kind == SPAN_KIND_INTERNAL and put.attributes["rpc.system"] == "inprocess"
        assert [s.name for s in tree.children(log_upload)] == ["treadle.artifacts.v1.ArtifactService/PutArtifact"]
        wait = tree.child(node, "executor.wait")
        assert "artifact.upload main-logs" not in {s.name for s in tree.children(wait)}

    # The local runtime delivers each step's context with its launch: no executor asks the scheduler for it.
    assert tree.all("treadle.scheduler.v1.SchedulerService/GetStepContext") == []
    for task in ("make", "last"):
        assert tree.children(tree.child(tree.one(f"node {task}"), "executor.init")) == []
    assert len(tree.all("treadle.scheduler.v1.SchedulerService/CompleteStep", **{"rpc.system": "inprocess"})) == 3

    # Phases in order: queue, launch, init, main, wait, report.
    make = tree.one("node make")
    ordered = sorted((s for s in tree.children(make) if s.name in POD_PHASES), key=lambda s: s.start_ns)
    assert [s.name for s in ordered] == [
        "queue",
        "launch",
        "executor.init",
        "executor.main",
        "executor.wait",
        "outputs.report",
    ]

    # One child per output artifact upload and per output parameter, one per input download, with sizes.
    make_wait = tree.child(make, "executor.wait")
    upload = tree.child(make_wait, "artifact.upload data")
    assert upload.attributes["treadle.artifact.size_bytes"] > 0
    tree.child(upload, "treadle.artifacts.v1.ArtifactService/PutArtifact")
    tree.child(make_wait, "parameter answer")
    use_init = tree.child(tree.one("node use"), "executor.init")
    download = tree.child(use_init, "artifact.download data")
    assert download.attributes["treadle.artifact.size_bytes"] > 0
    tree.child(download, "treadle.artifacts.v1.ArtifactService/DownloadArtifact")


def test_a_workflow_keeps_its_trace_across_a_scheduler_restart(tmp_path: Path) -> None:
    async def main() -> list[ReceivedSpan]:
        receiver = await OtlpTraceReceiver.start()
        env = otel_env(receiver)
        first = await asyncio.to_thread(ServedTreadle, tmp_path, env)
        try:
            async with TreadleClient(first.address) as client:
                await client.submit(SLOW)
                async with asyncio.timeout(30):
                    while True:
                        workflow = await client.get("restarted")
                        running = [n for n in workflow.status.nodes.values() if n.phase == wf.NODE_PHASE_RUNNING]
                        if any(n.display_name == "slow" for n in running):
                            break
                        await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(first.stop)
        second = await asyncio.to_thread(ServedTreadle, tmp_path, env)
        try:
            async with TreadleClient(second.address) as client:
                final = await client.wait("restarted", timeout=60)
            assert final.status.phase == wf.WORKFLOW_PHASE_SUCCEEDED, final.status.message
        finally:
            log = await asyncio.to_thread(second.stop)
        try:
            return await receiver.wait_for(lambda spans: root_of(spans, "restarted") is not None, timeout=20)
        except TimeoutError:
            raise AssertionError(f"no root span; the second server logged:\n{log}") from None
        finally:
            await receiver.stop()

    spans = asyncio.run(main())
    root = root_of(spans, "restarted")
    assert root is not None
    tree = Tree(spans, root.trace_id)
    # The submission, made to the first server, is in the trace the second server finished.
    submit = tree.one("treadle.admission.v1.AdmissionService/SubmitWorkflow")
    assert submit.parent_span_id == root.span_id
    # The slow step ran twice (the restart killed its first attempt), both attempts under one node span.
    slow = tree.one("node slow")
    assert slow.attributes["treadle.attempt"] == 1
    launches = Counter(s.attributes["treadle.attempt"] for s in tree.children(slow) if s.name == "launch")
    assert launches == {0: 1, 1: 1}
    assert {s.trace_id for s in spans if s.attributes.get("treadle.workflow.name") == "restarted"} == {root.trace_id}
    for span in tree.spans:
        if span is not root:
            assert span.parent_span_id in tree.by_id, f"{span.name} has a parent outside the trace"
