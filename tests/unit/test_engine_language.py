"""The engine's Argo language features, driven without any server (see engine_driver)."""

from __future__ import annotations

import json
from typing import Any

from engine_driver import Run, echo_args, fail

from treadle.services.scheduler.engine import NodePhase, NodeType

SAY = """
  - name: say
    inputs: {parameters: [{name: text}]}
    container: {image: busybox, command: [echo], args: ["{{inputs.parameters.text}}"]}
"""


def wf(body: str, name: str = "lang", extra: str = "") -> str:
    return f"""
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
{extra}  templates:
{body}{SAY}"""


def ok(result: str = "", **params: str) -> Any:
    return lambda ctx: ("Succeeded", {"result": result, "exitCode": "0",
                                      "parameters": [{"name": k, "value": v} for k, v in params.items()]}, "")  # fmt: skip


# -- loops --------------------------------------------------------------------


def test_with_items_strings_numbers_and_maps_aggregate_outputs() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - name: fan
        template: say
        arguments: {parameters: [{name: text, value: "{{item.os}}-{{item.v}}"}]}
        withItems: [{os: debian, v: 12}, {os: alpine, v: 3}]
    - - name: nums
        template: say
        arguments: {parameters: [{name: text, value: "n{{item}}"}]}
        withItems: [1, 2.5, "three"]
    - - name: after
        template: say
        arguments: {parameters: [{name: text, value: "{{steps.fan.outputs.result}}"}]}
""")
    ).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.node("fan").type == NodeType.TASK_GROUP
    assert run.node("fan(0:os:debian,v:12)").outputs["result"] == "debian-12"
    assert [run.node(f"nums({i}:{v})").outputs["result"] for i, v in enumerate(["1", "2.5", "three"])] == [
        "n1",
        "n2.5",
        "nthree",
    ]
    assert json.loads(run.node("after").outputs["result"]) == ["debian-12", "alpine-3"]


def test_with_param_from_previous_result_and_empty_list_skips() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - {name: gen, template: say, arguments: {parameters: [{name: text, value: "unused"}]}}
    - - name: each
        template: say
        arguments: {parameters: [{name: text, value: "got {{item}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
    - - name: none
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withParam: "[]"
""")
    ).run(by_step={"gen": ok('["a", "b", "c"]')})
    assert run.phase == NodePhase.SUCCEEDED
    assert sorted(n for n in run.launched if n.startswith("each")) == ["each(0:a)", "each(1:b)", "each(2:c)"]
    assert run.node("none").phase == NodePhase.SKIPPED


def test_with_param_that_is_not_a_list_errors_the_step() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - name: each
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withParam: "not json"
""")
    )
    run.run()
    assert run.phase == NodePhase.FAILED
    assert "withParam value could not be parsed as a JSON list" in run.node("each").message


def test_with_sequence_count_start_end_and_format() -> None:
    run = Run(
        wf("""
  - name: main
    dag:
      tasks:
      - name: counted
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withSequence: {count: "3", start: "5"}
      - name: ranged
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withSequence: {start: "1", end: "3", format: "part-%02d"}
""")
    ).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert json.loads(run.node("counted").outputs["result"]) == [5, 6, 7]
    assert json.loads(run.node("ranged").outputs["result"]) == ["part-01", "part-02", "part-03"]


# -- conditionals ---------------------------------------------------------------

COIN = """
  - name: main
    steps:
    - - {name: flip, template: say, arguments: {parameters: [{name: text, value: x}]}}
    - - name: heads
        template: say
        arguments: {parameters: [{name: text, value: "it was heads"}]}
        when: "{{steps.flip.outputs.result}} == heads"
      - name: tails
        template: say
        arguments: {parameters: [{name: text, value: "it was tails"}]}
        when: "{{steps.flip.outputs.result}} == tails"
      - name: big
        template: say
        arguments: {parameters: [{name: text, value: big}]}
        when: "{{steps.flip.outputs.exitCode}} < 1 && ('{{steps.flip.outputs.result}}' == 'heads' || false)"
"""


def test_when_runs_or_skips_with_argo_semantics() -> None:
    run = Run(wf(COIN)).run(by_step={"flip": ok("heads")})
    assert run.phase == NodePhase.SUCCEEDED
    assert run.node("heads").phase == NodePhase.SUCCEEDED
    tails = run.node("tails")
    assert tails.phase == NodePhase.SKIPPED and tails.type == NodeType.SKIPPED
    assert tails.message == "when 'heads == tails' evaluated false"
    assert run.node("big").phase == NodePhase.SUCCEEDED


def test_when_inside_a_loop_uses_the_item() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - name: evens
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withItems: [1, 2, 3, 4]
        when: "{{item}} % 2 == 0"
""")
    ).run()
    assert sorted(run.launched) == ["evens(1:2)", "evens(3:4)"]
    assert run.node("evens(0:1)").phase == NodePhase.SKIPPED


def test_expression_tags_in_arguments() -> None:
    run = Run(
        wf(
            """
  - name: main
    steps:
    - - name: calc
        template: say
        arguments: {parameters: [{name: text, value: "{{=asInt(workflow.parameters.n) * 2}} {{=sprig.upper(workflow.parameters.word)}}"}]}
""",
            extra="  arguments: {parameters: [{name: n, value: '21'}, {name: word, value: loom}]}\n",
        )
    ).run()
    assert run.node("calc").outputs["result"] == "42 LOOM"


# -- DAG logic ------------------------------------------------------------------

DEPENDS = """
  - name: main
    dag:
      tasks:
      - {name: a, template: say, arguments: {parameters: [{name: text, value: a}]}}
      - {name: b, template: say, depends: a, arguments: {parameters: [{name: text, value: b}]}}
      - {name: rescue, template: say, depends: "b.Failed", arguments: {parameters: [{name: text, value: r}]}}
      - {name: happy, template: say, depends: "b.Succeeded", arguments: {parameters: [{name: text, value: h}]}}
      - {name: either, template: say, depends: "(rescue.Succeeded || happy.Succeeded) && !a.Failed",
         arguments: {parameters: [{name: text, value: e}]}}
      - {name: omitted-ok, template: say, depends: "happy.Omitted", arguments: {parameters: [{name: text, value: o}]}}
"""


def test_depends_handles_failure_branches() -> None:
    run = Run(wf(DEPENDS)).run(by_step={"b": fail(1)})
    assert run.node("rescue").phase == NodePhase.SUCCEEDED
    assert run.node("happy").phase == NodePhase.OMITTED
    assert run.node("either").phase == NodePhase.SUCCEEDED
    assert run.node("omitted-ok").phase == NodePhase.SUCCEEDED
    assert run.phase == NodePhase.SUCCEEDED  # the failure of b was expected by rescue


def test_depends_on_success_path() -> None:
    run = Run(wf(DEPENDS)).run()
    assert run.node("rescue").phase == NodePhase.OMITTED
    assert run.node("happy").phase == NodePhase.SUCCEEDED
    assert run.node("omitted-ok").phase == NodePhase.OMITTED
    assert run.phase == NodePhase.SUCCEEDED


def test_any_succeeded_and_all_failed_over_loops() -> None:
    run = Run(
        wf("""
  - name: main
    dag:
      tasks:
      - name: tries
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withItems: [a, b]
      - {name: some, template: say, depends: tries.AnySucceeded, arguments: {parameters: [{name: text, value: s}]}}
      - {name: none, template: say, depends: tries.AllFailed, arguments: {parameters: [{name: text, value: n}]}}
""")
    ).run(by_step={"tries(0:a)": fail(1)})
    assert run.node("some").phase == NodePhase.SUCCEEDED
    assert run.node("none").phase == NodePhase.OMITTED


def test_continue_on_failed_in_steps_and_dag() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - {name: shaky, template: say, continueOn: {failed: true}, arguments: {parameters: [{name: text, value: s}]}}
    - - {name: next, template: inner}
  - name: inner
    dag:
      tasks:
      - {name: x, template: say, continueOn: {failed: true}, arguments: {parameters: [{name: text, value: x}]}}
      - {name: y, template: say, dependencies: [x], arguments: {parameters: [{name: text, value: y}]}}
""")
    ).run(by_step={"shaky": fail(4), "x": fail(5)})
    assert run.node("shaky").phase == NodePhase.FAILED
    assert run.node("y").phase == NodePhase.SUCCEEDED
    assert run.phase == NodePhase.SUCCEEDED


FAN = """
  - name: main
    dag:
      failFast: {fail_fast}
      tasks:
      - {{name: bad, template: say, arguments: {{parameters: [{{name: text, value: b}}]}}}}
      - {{name: slow, template: say, arguments: {{parameters: [{{name: text, value: s}}]}}}}
      - {{name: later, template: say, dependencies: [slow], arguments: {{parameters: [{{name: text, value: l}}]}}}}
"""


def test_fail_fast_stops_new_tasks_and_can_be_disabled() -> None:
    fast = Run(wf(FAN.format(fail_fast="true"))).run(by_step={"bad": fail(1)})
    assert fast.phase == NodePhase.FAILED and "later" not in fast.launched
    slow = Run(wf(FAN.format(fail_fast="false"))).run(by_step={"bad": fail(1)})
    assert slow.phase == NodePhase.FAILED and "later" in slow.launched


def test_dag_target_runs_only_targets_and_their_ancestors() -> None:
    run = Run(
        wf("""
  - name: main
    dag:
      target: c
      tasks:
      - {name: a, template: say, arguments: {parameters: [{name: text, value: a}]}}
      - {name: b, template: say, arguments: {parameters: [{name: text, value: b}]}}
      - {name: c, template: say, dependencies: [a], arguments: {parameters: [{name: text, value: c}]}}
""")
    ).run()
    assert sorted(run.launched) == ["a", "c"]
    assert run.phase == NodePhase.SUCCEEDED


# -- retries --------------------------------------------------------------------

RETRY = """
  - name: main
    steps:
    - - {{name: flaky, template: flaky}}
  - name: flaky
    retryStrategy: {strategy}
    container: {{image: busybox, command: [sh, -c, "echo attempt {{{{retries}}}}"]}}
"""


def test_retries_each_attempt_is_a_child_and_last_outputs_count() -> None:
    calls: list[str] = []

    def flaky(ctx: dict[str, Any]) -> Any:
        calls.append(ctx["container"]["command"][2])
        return fail(1)(ctx) if len(calls) < 3 else ("Succeeded", {"result": "third", "exitCode": "0"}, "")

    run = Run(wf(RETRY.format(strategy='{limit: "4", backoff: {duration: "10s", factor: "2"}}'))).run(
        by_step={"flaky": flaky}
    )
    assert run.phase == NodePhase.SUCCEEDED
    assert calls == ["echo attempt 0", "echo attempt 1", "echo attempt 2"]
    retry = run.node("flaky")
    assert retry.type == NodeType.RETRY and len(retry.children) == 3
    assert retry.outputs["result"] == "third"
    assert run.node("flaky(0)").phase == NodePhase.FAILED
    assert run.clock == 1000.0 + 10 + 20  # backoff 10s then 20s


def test_retry_limit_exhausted_fails_with_last_attempt() -> None:
    run = Run(wf(RETRY.format(strategy="{limit: 2}"))).run(by_step={"flaky": fail(7)})
    assert run.phase == NodePhase.FAILED
    assert len(run.node("flaky").children) == 3
    assert "exit code 7" in run.engine.state.message


def test_retry_policies_and_expression() -> None:
    on_error = Run(wf(RETRY.format(strategy="{limit: 3, retryPolicy: OnError}"))).run(by_step={"flaky": fail(1)})
    assert len(on_error.node("flaky").children) == 1  # a failure is not an error
    always = Run(wf(RETRY.format(strategy="{limit: 3, retryPolicy: Always}"))).run(
        by_step={"flaky": lambda ctx: ("Error", {}, "executor lost")}
    )
    assert len(always.node("flaky").children) == 4
    expr = Run(wf(RETRY.format(strategy='{limit: 5, expression: "asInt(lastRetry.exitCode) == 2"}')))
    codes = iter([2, 2, 3])
    expr.run(by_step={"flaky": lambda ctx: fail(next(codes))(ctx)})
    assert len(expr.node("flaky").children) == 3


def test_backoff_max_duration_stops_retrying() -> None:
    strategy = '{limit: 10, backoff: {duration: "30s", factor: "2", maxDuration: "1m"}}'
    run = Run(wf(RETRY.format(strategy=strategy))).run(by_step={"flaky": fail(1)})
    assert run.phase == NodePhase.FAILED
    assert len(run.node("flaky").children) == 2  # 30s wait fits in 1m, a 60s one would not


# -- time limits ----------------------------------------------------------------


def test_pod_deadline_travels_with_the_launch() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - {name: a, template: limited}
    - - {name: b, template: timed}
  - name: limited
    activeDeadlineSeconds: 5
    container: {image: busybox, command: [sleep, "60"]}
  - name: timed
    timeout: 1m30s
    container: {image: busybox, command: [sleep, "60"]}
""")
    ).run()
    assert run.deadlines == {"a": 5.0, "b": 90.0}


def test_steps_deadline_kills_running_children_and_fails() -> None:
    run = Run(
        wf("""
  - name: main
    activeDeadlineSeconds: 30
    steps:
    - - {name: stuck, template: say, arguments: {parameters: [{name: text, value: z}]}}
""")
    )
    run.hold = {"stuck"}
    run.run()
    assert run.phase == NodePhase.FAILED
    assert run.cancelled == ["stuck"]
    assert "deadline" in run.node("stuck").message
    assert "exceeded its deadline of 30 seconds" in run.engine.state.message


def test_workflow_deadline_fails_and_still_runs_exit_handler() -> None:
    run = Run(
        wf(
            """
  - name: main
    steps:
    - - {name: stuck, template: say, arguments: {parameters: [{name: text, value: z}]}}
  - name: bye
    steps:
    - - {name: note, template: say, arguments: {parameters: [{name: text, value: "{{workflow.status}}"}]}}
""",
            extra="  activeDeadlineSeconds: 60\n  onExit: bye\n",
        )
    )
    run.hold = {"stuck"}
    run.run()
    assert run.phase == NodePhase.FAILED
    assert "Max duration limit exceeded" in run.engine.state.message
    assert run.node("note").outputs["result"] == "Failed"


# -- exit handlers --------------------------------------------------------------

EXIT = """
  - name: main
    steps:
    - - name: work
        template: say
        arguments: {parameters: [{name: text, value: w}]}
        onExit: cleanup
  - name: cleanup
    container: {image: busybox, command: [echo, "cleaning after {{workflow.name}}"]}
  - name: report
    steps:
    - - name: status
        template: say
        arguments: {parameters: [{name: text, value: "{{workflow.status}} {{workflow.failures}}"}]}
"""


def test_workflow_and_step_exit_handlers_see_status_and_failures() -> None:
    run = Run(wf(EXIT, extra="  onExit: report\n")).run(by_step={"work": fail(9)})
    assert run.phase == NodePhase.FAILED
    assert run.launched == ["work", "work.onExit", "status"]
    text = run.node("status").outputs["result"]
    status, failures = text.split(" ", 1)
    assert status == "Failed"
    assert json.loads(failures)[0]["displayName"] == "work"


def test_hooks_exit_and_failed_exit_handler_fails_a_good_workflow() -> None:
    manifest = wf(EXIT.replace("onExit: cleanup", "hooks: {exit: {template: cleanup}}"), extra="  onExit: report\n")
    run = Run(manifest).run(by_step={"status": fail(3)})
    assert "work.onExit" in run.launched
    assert run.phase == NodePhase.FAILED
    assert run.engine.state.message.startswith("exit handler failed")


# -- suspend ----------------------------------------------------------------------

APPROVAL = """
  - name: main
    steps:
    - - {name: approve, template: gate}
    - - {name: go, template: say, arguments: {parameters: [{name: text, value: "{{steps.approve.outputs.parameters.answer}}"}]}}
  - name: gate
    suspend: {}
    outputs:
      parameters:
      - {name: answer, valueFrom: {supplied: {}, default: "no answer"}}
"""


def test_suspend_waits_for_set_node_and_resume() -> None:
    run = Run(wf(APPROVAL)).run()
    assert run.phase == NodePhase.RUNNING
    assert run.node("approve").type == NodeType.SUSPEND
    run.take(run.engine.set_node("approve", {"answer": "ship it"}))
    assert run.node("approve").phase == NodePhase.RUNNING
    run.take(run.engine.resume("approve"))
    run.run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.node("go").outputs["result"] == "ship it"


def test_suspend_with_duration_resumes_by_itself_with_defaults() -> None:
    run = Run(wf(APPROVAL.replace("suspend: {}", "suspend: {duration: 2m}"))).run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.clock == 1000.0 + 120
    assert run.node("go").outputs["result"] == "no answer"


def test_stop_runs_exit_handlers_terminate_does_not() -> None:
    stopped = Run(
        wf(APPROVAL, extra="  onExit: bye\n")
        + """
  - name: bye
    container: {image: busybox, command: [echo, bye]}
"""
    ).run()
    stopped.take(stopped.engine.stop("enough"))
    stopped.run()
    assert stopped.phase == NodePhase.FAILED
    assert stopped.launched[-1] == "lang.onExit"
    assert stopped.engine.state.message == "enough"
    terminated = Run(
        wf(APPROVAL, extra="  onExit: bye\n")
        + """
  - name: bye
    container: {image: busybox, command: [echo, bye]}
"""
    ).run()
    terminated.take(terminated.engine.terminate("now"))
    terminated.run()
    assert terminated.phase == NodePhase.FAILED and not terminated.has("lang.onExit")
    assert terminated.node("approve").phase == NodePhase.FAILED


def test_workflow_suspend_holds_new_pods_until_resume() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - {name: one, template: say, arguments: {parameters: [{name: text, value: "1"}]}}
    - - {name: two, template: say, arguments: {parameters: [{name: text, value: "2"}]}}
""")
    ).start()
    run.engine.suspend()
    first = run.pending.pop(0)
    run.take(run.engine.complete_pod(first.node_id, first.attempt, "Succeeded", {"result": "1"}))
    assert run.pending == []  # "two" waits
    run.take(run.engine.resume())
    run.run()
    assert run.phase == NodePhase.SUCCEEDED and run.launched == ["two"]


# -- parallelism ------------------------------------------------------------------


def test_workflow_and_template_parallelism_cap_running_pods() -> None:
    run = Run(
        wf("""
  - name: main
    parallelism: 2
    steps:
    - - name: many
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withItems: [1, 2, 3, 4, 5]
""")
    ).start()
    assert len(run.pending) == 2
    run.run()
    assert run.phase == NodePhase.SUCCEEDED and len(run.launched) == 5
    wide = Run(
        wf(
            """
  - name: main
    steps:
    - - name: many
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withItems: [1, 2, 3, 4, 5]
""",
            extra="  parallelism: 3\n",
        )
    ).start()
    assert len(wide.pending) == 3


# -- retrying a failed workflow ---------------------------------------------------------


def test_retry_failed_workflow_keeps_successes() -> None:
    manifest = wf("""
  - name: main
    steps:
    - - {name: good, template: say, arguments: {parameters: [{name: text, value: g}]}}
    - - {name: bad, template: say, arguments: {parameters: [{name: text, value: b}]}}
""")
    run = Run(manifest).run(by_step={"bad": fail(1)})
    assert run.phase == NodePhase.FAILED
    run.launched.clear()
    run.take(run.engine.retry_failed())
    run.run()
    assert run.phase == NodePhase.SUCCEEDED
    assert run.launched == ["bad"]
    assert run.node("good").outputs["result"] == "g"


# -- outputs of unusual nodes ---------------------------------------------------


def test_output_default_when_child_skipped_and_status_exit_code() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - {name: inner, template: maybe}
    - - {name: show, template: say, arguments: {parameters: [{name: text, value: "{{steps.inner.outputs.parameters.v}} {{steps.inner.status}}"}]}}
  - name: maybe
    outputs:
      parameters:
      - {name: v, valueFrom: {parameter: "{{steps.never.outputs.result}}", default: fallback}}
    steps:
    - - {name: never, template: say, when: "1 == 2", arguments: {parameters: [{name: text, value: x}]}}
""")
    ).run()
    assert run.node("show").outputs["result"] == "fallback Succeeded"


def test_global_outputs_from_inside_a_loop() -> None:
    run = Run(
        wf("""
  - name: main
    steps:
    - - name: each
        template: emit
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: [a, b]
  - name: emit
    inputs: {parameters: [{name: v}]}
    container: {image: busybox, command: [sh, -c, "echo {{inputs.parameters.v}} > /tmp/v"]}
    outputs:
      parameters:
      - {name: v, valueFrom: {path: /tmp/v}, globalName: last-seen}
""")
    ).run(behaviour=echo_args)
    assert run.engine.state.outputs["parameters"][0]["name"] == "last-seen"


# -- lifecycle hooks ----------------------------------------------------------------


def test_expression_hooks_fire_once_at_workflow_and_step_level() -> None:
    run = Run(
        wf(
            """
  - name: main
    steps:
    - - name: first
        template: say
        arguments: {parameters: [{name: text, value: f}]}
        hooks:
          started: {expression: 'steps["first"].status == "Running"', template: notify}
          done: {expression: 'steps.first.status == "Succeeded"', template: notify}
          never: {expression: 'steps.first.status == "Failed"', template: notify}
  - name: notify
    container: {image: busybox, command: [echo, hook]}
""",
            extra="  hooks:\n    finished: {expression: 'workflow.status == \"Succeeded\"', template: notify}\n",
        )
    ).run()
    assert run.phase == NodePhase.SUCCEEDED
    fired = sorted(n for n in run.launched if ".hooks." in n)
    assert fired == ["lang.hooks.finished", "lang[0].first.hooks.done", "lang[0].first.hooks.started"]
    assert not run.has("lang[0].first.hooks.never")


# -- memoize ------------------------------------------------------------------------

MEMO = """
  - name: main
    steps:
    - - {name: costly, template: heavy, arguments: {parameters: [{name: n, value: "{{workflow.parameters.n}}"}]}}
  - name: heavy
    inputs: {parameters: [{name: n}]}
    memoize: {key: "heavy-{{inputs.parameters.n}}", maxAge: 1h, cache: {configMap: {name: results}}}
    container: {image: busybox, command: [echo, "{{inputs.parameters.n}}"]}
"""


def test_memoize_reuses_outputs_by_key_until_they_are_too_old() -> None:
    from treadle.services.scheduler.engine.nodes import MemoryMemoCache

    cache = MemoryMemoCache()
    cache.now = lambda: 1000.0  # the drivers' clocks start at 1000
    first = Run(wf(MEMO, extra="  arguments: {parameters: [{name: n, value: '7'}]}\n"), memo=cache).run()
    assert first.launched == ["costly"]
    second = Run(wf(MEMO, extra="  arguments: {parameters: [{name: n, value: '7'}]}\n"), memo=cache).run()
    assert second.launched == [] and second.phase == NodePhase.SUCCEEDED
    hit = second.node("costly")
    assert hit.outputs["result"] == "7" and hit.progress["memoize"]["hit"] is True
    other_key = Run(wf(MEMO, extra="  arguments: {parameters: [{name: n, value: '8'}]}\n"), memo=cache).run()
    assert other_key.launched == ["costly"]
    stale = Run(wf(MEMO, extra="  arguments: {parameters: [{name: n, value: '7'}]}\n"), memo=cache)
    stale.clock += 7200
    stale.run()
    assert stale.launched == ["costly"]


# -- synchronization ------------------------------------------------------------------

SYNC = """
  - name: main
    steps:
    - - name: crit
        template: guarded
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withItems: [a, b, c]
  - name: guarded
    synchronization: {lock}
    inputs: {parameters: [{name: text}]}
    container: {image: busybox, command: [echo, "{{inputs.parameters.text}}"]}
"""


def test_mutex_lets_one_holder_run_at_a_time_across_workflows() -> None:
    from treadle.services.scheduler.engine.nodes import MemoryLocks

    locks = MemoryLocks()
    one = Run(wf(SYNC.replace("{lock}", "{mutex: {name: printer}}"), name="one"), locks=locks).start()
    two = Run(wf(SYNC.replace("{lock}", "{mutex: {name: printer}}"), name="two"), locks=locks).start()
    assert len(one.pending) == 1 and len(two.pending) == 0
    waiting = [n for n in two.table.all() if n.phase == NodePhase.PENDING and n.type == NodeType.POD]
    assert waiting and waiting[0].message == "Waiting for lock mutex/printer"
    launch = one.pending.pop(0)
    one.take(one.engine.complete_pod(launch.node_id, launch.attempt, "Succeeded", {"result": "x"}))
    assert len(one.pending) == 1  # the next item of the same workflow took the lock
    one.run()
    two.take(two.engine.locks_released())
    two.run()
    assert one.phase == two.phase == NodePhase.SUCCEEDED
    assert locks.holders["mutex/printer"] == []


def test_semaphore_limit_and_undefined_semaphore() -> None:
    from treadle.services.scheduler.engine.nodes import MemoryLocks

    ref = "{semaphore: {configMapKeyRef: {name: pool, key: gpus}}}"
    locks = MemoryLocks({"semaphore/pool/gpus": 2})
    run = Run(wf(SYNC.replace("{lock}", ref)), locks=locks).start()
    assert len(run.pending) == 2
    run.run()
    assert run.phase == NodePhase.SUCCEEDED
    missing = Run(wf(SYNC.replace("{lock}", ref)), locks=MemoryLocks()).run()
    assert missing.phase == NodePhase.FAILED
    assert "semaphore 'pool/gpus' is not defined" in missing.node("crit(0:a)").message


def test_workflow_level_mutex_holds_the_whole_workflow() -> None:
    from treadle.services.scheduler.engine.nodes import MemoryLocks

    locks = MemoryLocks()
    body = SYNC.replace("{lock}", "{}").replace("    synchronization: {}\n", "")
    extra = "  synchronization: {mutex: {name: nightly}}\n"
    first = Run(wf(body, name="first", extra=extra), locks=locks).start()
    second = Run(wf(body, name="second", extra=extra), locks=locks).start()
    assert first.pending and not second.pending
    assert second.phase == NodePhase.PENDING and "nightly" in second.engine.state.message
    first.run()
    second.take(second.engine.locks_released())
    second.run()
    assert second.phase == NodePhase.SUCCEEDED


# -- wide loops and DAGs start a window at a time ----------------------------------------


def test_wide_loop_and_dag_materialize_a_window_of_pods_at_a_time() -> None:
    manifest = wf(
        """
  - name: main
    steps:
    - - name: many
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withSequence: {count: "40"}
    - - {name: fan, template: wide}
  - name: wide
    dag:
      tasks:
"""
        + "\n".join(
            f"      - {{name: t{i}, template: say, arguments: {{parameters: [{{name: text, value: '{i}'}}]}}}}"
            for i in range(25)
        )
        + "\n"
    )
    run = Run(manifest, window=4).start()
    peak = 0
    while run.pending:
        peak = max(peak, len(run.pending), len([n for n in run.table.all() if n.type == NodeType.POD and not n.done]))
        launch = run.pending.pop(0)
        run.take(run.engine.complete_pod(launch.node_id, launch.attempt, "Succeeded", {"result": "x"}))
    assert run.phase == NodePhase.SUCCEEDED
    assert peak <= 4
    assert run.engine.state.pods_total == 65
    assert json.loads(run.node("many").outputs["result"]) == ["x"] * 40


def test_a_restarted_engine_finds_what_is_left_to_start() -> None:
    from treadle.services.scheduler.engine import MemoryNodeTable, WorkflowEngine, WorkflowState

    manifest = wf("""
  - name: main
    steps:
    - - name: many
        template: say
        arguments: {parameters: [{name: text, value: "{{item}}"}]}
        withSequence: {count: "10"}
""")
    run = Run(manifest, window=3).start()
    first = run.pending.pop(0)
    run.take(run.engine.complete_pod(first.node_id, first.attempt, "Succeeded", {"result": "x"}))
    # A new engine over the same nodes and state, as after a scheduler restart.
    nodes = MemoryNodeTable(list(run.table.all()))
    state = WorkflowState.from_record(run.engine.state.to_record())
    again = WorkflowEngine(state, run.engine.spec, nodes, window=3)
    pending = list(run.pending)
    done = 1
    while pending:
        launch = pending.pop(0)
        decisions = again.complete_pod(launch.node_id, launch.attempt, "Succeeded", {"result": "x"})
        assert decisions is not None
        pending += decisions.launches
        done += 1
    assert again.state.phase == NodePhase.SUCCEEDED and done == 10


# -- daemons --------------------------------------------------------------------------------------------

SERVER = """
  - name: server
    daemon: true
    container: {image: busybox, command: [httpd, -f]}
"""


def _daemon_up(run: Run, display: str, ip: str) -> None:
    node = run.node(display)
    run.take(run.engine.daemon_started(node.id, node.attempt, ip))


def test_a_daemon_step_lets_later_steps_reach_it_and_is_stopped_when_its_scope_ends() -> None:
    run = Run(
        wf(
            """
  - name: main
    steps:
    - - {name: server, template: server}
    - - name: client
        template: say
        arguments: {parameters: [{name: text, value: "http://{{steps.server.ip}}:8080"}]}
"""
            + SERVER
        )
    ).start()
    run.hold = {"server"}
    run.run()
    assert run.phase == NodePhase.RUNNING and not run.has("client")  # the next group waits for the daemon to be up
    _daemon_up(run, "server", "10.7.0.3")
    run.run()
    assert run.node("client").outputs["result"] == "http://10.7.0.3:8080"
    assert run.phase == NodePhase.SUCCEEDED
    assert run.cancelled == ["server"]  # the steps template ended: its daemon is stopped ...
    assert run.node("server").phase == NodePhase.SUCCEEDED  # ... and counts as a success


def test_daemons_in_a_dag_are_daemoned_for_depends_and_ip() -> None:
    run = Run(
        wf(
            """
  - name: main
    dag:
      tasks:
      - {name: server, template: server}
      - name: when-up
        template: say
        depends: server.Daemoned
        arguments: {parameters: [{name: text, value: "{{tasks.server.ip}}"}]}
      - name: bare
        template: say
        depends: server
        arguments: {parameters: [{name: text, value: "plain dependency"}]}
      - name: when-done
        template: say
        depends: server.Succeeded
        arguments: {parameters: [{name: text, value: "never"}]}
"""
            + SERVER
        )
    ).start()
    run.hold = {"server"}
    run.run()
    _daemon_up(run, "server", "10.7.0.9")
    run.run()
    assert run.node("when-up").outputs["result"] == "10.7.0.9"
    assert run.node("bare").phase == NodePhase.SUCCEEDED
    assert run.node("when-done").phase == NodePhase.OMITTED  # up is not Succeeded
    assert run.phase == NodePhase.SUCCEEDED and run.cancelled == ["server"]


def test_a_daemon_that_ends_on_its_own_succeeds_and_stale_reports_are_ignored() -> None:
    run = Run(
        wf(
            """
  - name: main
    dag:
      tasks:
      - {name: server, template: server}
      - {name: other, template: say, arguments: {parameters: [{name: text, value: "busy"}]}}
"""
            + SERVER
        )
    ).start()
    run.hold = {"server", "other"}
    run.run()
    server = run.node("server")
    assert run.engine.daemon_started(server.id, server.attempt + 1, "10.0.0.1") is None  # not this attempt
    _daemon_up(run, "server", "10.0.0.1")
    run.take(run.engine.complete_pod(server.id, server.attempt, "Failed", {"exitCode": "1"}, "exit code 1"))
    assert run.node("server").phase == NodePhase.SUCCEEDED  # a daemon's failure is ignored once it was up
    other = run.node("other")
    assert run.engine.daemon_started(other.id, other.attempt, "10.0.0.2") is None  # not a daemon template
    run.hold = set()
    run.run()
    assert run.phase == NodePhase.SUCCEEDED and run.cancelled == []  # nothing left to stop
