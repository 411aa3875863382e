from __future__ import annotations

from typing import Any

from engine_driver import Run, fail

from treadle.services.scheduler.engine import NodePhase, NodeType, node_id_for

STEPS = """
kind: Workflow
metadata: {name: st}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    steps:
    - - {name: first, template: say, arguments: {parameters: [{name: text, value: "hi {{workflow.parameters.who}}"}]}}
    - - {name: left, template: say, arguments: {parameters: [{name: text, value: "L {{steps.first.outputs.result}}"}]}}
      - {name: right, template: say, arguments: {parameters: [{name: text, value: "R {{steps.first.outputs.result}}"}]}}
    - - {name: last, template: say, arguments: {parameters: [{name: text, value: "{{steps.left.outputs.result}}+{{steps.right.outputs.result}}"}]}}
  - name: say
    inputs: {parameters: [{name: text}]}
    container: {image: busybox, command: [echo], args: ["{{inputs.parameters.text}}"]}
"""


def test_steps_run_groups_in_order_and_pass_results() -> None:
    run = Run(STEPS).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.launched[0] == "first" and run.launched[-1] == "last"
    assert set(run.launched[1:3]) == {"left", "right"}
    assert run.node("last").outputs["result"] == "L hi world+R hi world"
    root = run.table.get("st")
    assert root is not None and root.type == NodeType.STEPS
    assert [run.table.get(c).display_name for c in root.children] == ["[0]", "[1]", "[2]"]  # type: ignore[union-attr]
    assert run.engine.state.progress == "4/4"


def test_parameter_override_reaches_steps() -> None:
    run = Run(STEPS, parameters={"who": "treadle"}).run()
    assert run.node("first").outputs["result"] == "hi treadle"


def test_failed_step_fails_workflow_and_names_step_and_exit_code() -> None:
    run = Run(STEPS).run(by_step={"left": fail(3)})
    assert run.phase == NodePhase.FAILED
    assert "st[1].left" in run.engine.state.message and "exit code 3" in run.engine.state.message
    assert "last" not in run.launched  # the group after a failure never starts
    assert run.node("right").phase == NodePhase.SUCCEEDED  # siblings in the group still finish


def test_node_ids_follow_argo() -> None:
    run = Run(STEPS).run()
    assert run.node("first").id == node_id_for("st", "st[0].first")
    assert node_id_for("st", "st") == "st"


DAG = """
kind: Workflow
metadata: {name: dg}
spec:
  entrypoint: main
  templates:
  - name: main
    outputs: {parameters: [{name: out, valueFrom: {parameter: "{{tasks.d.outputs.result}}"}, globalName: final}]}
    dag:
      tasks:
      - {name: a, template: say, arguments: {parameters: [{name: text, value: A}]}}
      - {name: b, template: say, dependencies: [a], arguments: {parameters: [{name: text, value: "{{tasks.a.outputs.result}}B"}]}}
      - {name: c, template: say, dependencies: [a], arguments: {parameters: [{name: text, value: "{{tasks.a.outputs.result}}C"}]}}
      - {name: d, template: say, dependencies: [b, c], arguments: {parameters: [{name: text, value: "{{tasks.b.outputs.result}}{{tasks.c.outputs.result}}"}]}}
      - {name: solo, template: say, arguments: {parameters: [{name: text, value: S}]}}
  - name: say
    inputs: {parameters: [{name: text}]}
    container: {image: busybox, command: [echo], args: ["{{inputs.parameters.text}}"]}
"""


def test_dag_diamond_respects_dependencies_and_publishes_globals() -> None:
    run = Run(DAG).run()
    assert run.phase == NodePhase.SUCCEEDED
    order = run.launched
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")
    assert run.node("d").outputs["result"] == "ABAC"
    assert run.engine.state.outputs == {"parameters": [{"name": "final", "value": "ABAC"}]}
    root = run.table.get("dg")
    assert root is not None and root.outputs["parameters"] == [{"name": "out", "value": "ABAC"}]


def test_dag_failure_omits_dependents_and_starts_nothing_new() -> None:
    run = Run(DAG).run(by_step={"b": fail(2)})
    assert run.phase == NodePhase.FAILED
    assert run.node("d").phase == NodePhase.OMITTED
    assert run.node("d").type == NodeType.SKIPPED
    assert "d" not in run.launched
    assert "dg.b" in run.engine.state.message and "exit code 2" in run.engine.state.message


def test_stale_or_repeated_completion_is_ignored() -> None:
    run = Run(DAG)
    first = run.engine.start().launches[0]
    assert run.engine.complete_pod(first.node_id, first.attempt + 1, "Succeeded", {}) is None
    assert run.engine.complete_pod(first.node_id, first.attempt, "Succeeded", {"result": "A"}) is not None
    assert run.engine.complete_pod(first.node_id, first.attempt, "Succeeded", {"result": "A"}) is None


NESTED = """
kind: Workflow
metadata: {name: nest}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: inner, template: pipeline}
    - - {name: use, template: say, arguments: {parameters: [{name: text, value: "got {{steps.inner.outputs.parameters.value}}"}]}}
  - name: pipeline
    outputs: {parameters: [{name: value, valueFrom: {parameter: "{{tasks.two.outputs.result}}"}}]}
    dag:
      tasks:
      - {name: one, template: say, arguments: {parameters: [{name: text, value: "1"}]}}
      - {name: two, template: say, dependencies: [one], arguments: {parameters: [{name: text, value: "{{tasks.one.outputs.result}}2"}]}}
  - name: say
    inputs: {parameters: [{name: text}]}
    container: {image: busybox, command: [echo], args: ["{{inputs.parameters.text}}"]}
"""


def test_nested_dag_inside_steps_exposes_template_outputs() -> None:
    run = Run(NESTED).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.node("use").outputs["result"] == "got 12"
    inner = run.node("inner")
    assert inner.type == NodeType.DAG and inner.name == "nest[0].inner"
    assert run.node("two").name == "nest[0].inner.two"


ARTIFACTS = """
kind: Workflow
metadata: {name: art}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: make, template: produce}
    - - name: take
        template: consume
        arguments: {artifacts: [{name: data, from: "{{steps.make.outputs.artifacts.report}}"}]}
  - name: produce
    container: {image: busybox, command: [sh, -c, "echo hi > /tmp/r.txt"]}
    outputs: {artifacts: [{name: report, path: /tmp/r.txt}]}
  - name: consume
    inputs:
      artifacts:
      - {name: data, path: /tmp/in.txt}
      - {name: note, path: /tmp/note.txt, raw: {data: "for {{workflow.name}}"}}
    container: {image: busybox, command: [cat, "{{inputs.artifacts.data.path}}"]}
"""


def test_artifacts_flow_by_reference_and_raw_is_substituted() -> None:
    stored = {"key": "art/art-1/report.tgz", "sizeBytes": "10", "sha256": "ab", "archive": "tgz"}

    def produce(ctx: dict[str, Any]) -> Any:
        return "Succeeded", {"artifacts": [{"name": "report", "stored": stored}], "exitCode": "0"}, ""

    seen: dict[str, Any] = {}

    def consume(ctx: dict[str, Any]) -> Any:
        seen.update(ctx)
        return "Succeeded", {"exitCode": "0"}, ""

    run = Run(ARTIFACTS).run(by_step={"make": produce, "take": consume})
    assert run.phase == NodePhase.SUCCEEDED
    arts = {a["name"]: a for a in seen["inputs"]["artifacts"]}
    assert arts["data"]["stored"] == stored and arts["data"]["path"] == "/tmp/in.txt"
    assert arts["note"]["raw"] == {"data": "for art"}
    assert seen["container"]["command"] == ["cat", "/tmp/in.txt"]


def test_missing_output_at_runtime_errors_the_consumer() -> None:
    run = Run(ARTIFACTS).run(by_step={"make": lambda ctx: ("Succeeded", {"exitCode": "0"}, "")})
    assert run.phase == NodePhase.FAILED
    take = run.node("take")
    assert take.phase == NodePhase.ERROR and "report" in take.message


def test_relaunch_bumps_attempt_and_old_attempt_reports_are_refused() -> None:
    run = Run(STEPS)
    first = run.engine.start().launches[0]
    again = run.engine.relaunch(first.node_id)
    assert again is not None and again.attempt == first.attempt + 1
    assert run.engine.complete_pod(first.node_id, first.attempt, "Succeeded", {"result": "x"}) is None
    assert run.engine.complete_pod(first.node_id, again.attempt, "Succeeded", {"result": "x"}) is not None


def test_wide_dag_completion_is_incremental() -> None:
    tasks = "\n".join(
        f"      - {{name: t{i}, template: say, arguments: {{parameters: [{{name: text, value: '{i}'}}]}}}}"
        for i in range(2000)
    )
    manifest = f"""
kind: Workflow
metadata: {{name: wide}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
{tasks}
      - {{name: join, template: say, dependencies: [t0, t1999], arguments: {{parameters: [{{name: text, value: done}}]}}}}
  - name: say
    inputs: {{parameters: [{{name: text}}]}}
    container: {{image: busybox, command: [echo], args: ["{{{{inputs.parameters.text}}}}"]}}
"""
    run = Run(manifest).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.launched[-1] == "join"
    assert run.engine.state.progress == "2001/2001"
