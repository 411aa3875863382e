"""Parsing of the CLI's argo-parity verbs and flags: lifecycle, delete filters, template, semaphore,
completion, parameter files, labels, and the TLS and token flags. No server is needed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from treadle.client import cli
from treadle.client.commands import list_filter
from treadle.client.inputs import (
    EXIT_BAD_INPUT,
    CommandError,
    parameter_file_argument,
    parameters_dict,
    submission_manifest,
)
from treadle.client.lifecycle import node_selector
from treadle.client.remote import client_for, security_from_args
from treadle.workflow.v1 import workflow_pb2 as wf_pb

REPO = Path(__file__).resolve().parents[2]
TREADLE = str(Path(sys.executable).parent / "treadle")
CONNECTION_ENV = (
    "TREADLE_SECURE",
    "TREADLE_CA_CERT",
    "TREADLE_INSECURE_SKIP_VERIFY",
    "TREADLE_TOKEN",
    "TREADLE_SCHEDULER",
)


@pytest.fixture(autouse=True)
def no_connection_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CONNECTION_ENV, cli.SERVER_ENV):
        monkeypatch.delenv(name, raising=False)


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("treadle: "), err
    return err


# -- submit -------------------------------------------------------------------------------


def test_parameter_files_come_before_p_wherever_they_stand(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.json"
    first.write_text("who: file\ncount: 3\nflag: true\nlist: [1, 2]\nnothing:\n")
    second.write_text('{"who": "second file", "extra": "x"}')
    args = cli.parse_args(
        ["submit", "wf.yaml", "-p", "who=cli", "--parameter-file", str(first), "-f", str(second), "-p", "n=1"]
    )
    assert parameters_dict(args.parameters) == {
        "who": "cli",
        "count": "3",
        "flag": "true",
        "list": "[1, 2]",
        "nothing": "",
        "extra": "x",
        "n": "1",
    }
    # Without -p the later file wins.
    args = cli.parse_args(["submit", "wf.yaml", "-f", str(first), "-f", str(second)])
    assert parameters_dict(args.parameters)["who"] == "second file"


def test_parameter_files_are_accepted_by_run_lint_and_resubmit(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a: b\n")
    for argv in (["run", "f.yaml"], ["lint", "f.yaml"], ["resubmit", "wf"]):
        assert parameters_dict(cli.parse_args([*argv, "-f", str(path)]).parameters) == {"a": "b"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("[1, 2]\n", "expected a map"), ("a: [\n", "malformed YAML at line"), ("just text\n", "expected a map")],
)
def test_bad_parameter_files(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        parameter_file_argument(str(path))


def test_an_empty_parameter_file_sets_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("")
    assert parameter_file_argument(str(path)) == []


def test_a_missing_parameter_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["submit", "wf.yaml", "-f", "/no/such/params.yaml"], capsys)
    assert "/no/such/params.yaml" in err


def test_submit_takes_argo_flags() -> None:
    args = cli.parse_args(["submit", "wf.yaml", "--wait", "-o", "yaml", "-l", "team=a,env=dev", "--label", "x=1"])
    assert (args.wait, args.watch, args.output) == (True, False, "yaml")
    assert parameters_dict(args.labels) == {"team": "a", "env": "dev", "x": "1"}
    assert cli.parse_args(["submit", "--from", "workflowtemplate/t"]).source == "workflowtemplate/t"
    assert cli.parse_args(["submit", "wf.yaml"]).source is None


def test_submit_from_a_workflow_template_builds_a_workflow_that_refers_to_it() -> None:
    import json

    manifest = submission_manifest(None, "workflowtemplate/spinning")
    doc = json.loads(manifest.text)
    assert doc["spec"] == {"workflowTemplateRef": {"name": "spinning"}}
    assert doc["metadata"] == {"generateName": "spinning-"} and doc["kind"] == "Workflow"
    assert manifest.path == "workflowtemplate/spinning"
    for path, source, problem in [
        (None, None, "name a manifest file"),
        ("wf.yaml", "workflowtemplate/x", "not both"),
        (None, "cronwf/x", "expected workflowtemplate/NAME"),
        (None, "workflowtemplate/", "expected workflowtemplate/NAME"),
    ]:
        with pytest.raises(CommandError, match=problem):
            submission_manifest(path, source)


# -- list and delete ---------------------------------------------------------------------------


def test_list_running_and_completed_select_phases() -> None:
    running = list_filter(cli.parse_args(["list", "--running"]))
    completed = list_filter(cli.parse_args(["list", "--completed", "-o", "wide"]))
    assert running.phases == (wf_pb.WORKFLOW_PHASE_PENDING, wf_pb.WORKFLOW_PHASE_RUNNING)
    assert completed.phases == (wf_pb.WORKFLOW_PHASE_SUCCEEDED, wf_pb.WORKFLOW_PHASE_FAILED, wf_pb.WORKFLOW_PHASE_ERROR)
    narrowed = list_filter(cli.parse_args(["list", "--completed", "--status", "Failed,Running"]))
    assert narrowed.phases == (wf_pb.WORKFLOW_PHASE_FAILED,)
    with pytest.raises(CommandError, match="select nothing together"):
        list_filter(cli.parse_args(["list", "--running", "--status", "Succeeded"]))


@pytest.mark.parametrize("output", ["name", "json", "yaml", "wide"])
def test_list_outputs(output: str) -> None:
    assert cli.parse_args(["list", "-o", output]).output == output


def test_delete_takes_names_or_filters() -> None:
    args = cli.parse_args(["delete", "a", "b"])
    assert (args.names, args.all, args.completed, args.dry_run) == (["a", "b"], False, False, False)
    args = cli.parse_args(["delete", "--completed", "-l", "team=a", "--prefix", "x-", "--status", "Failed"])
    assert args.names == [] and args.completed
    filters = list_filter(args)
    assert (filters.label_selector, filters.name_prefix) == ("team=a", "x-")
    assert filters.phases == (wf_pb.WORKFLOW_PHASE_FAILED,)
    assert cli.parse_args(["delete", "--all", "--dry-run"]).dry_run


# -- lifecycle verbs ---------------------------------------------------------------------------


def test_lifecycle_verbs_take_several_names() -> None:
    for verb in ("suspend", "resume", "stop", "terminate", "retry", "resubmit"):
        assert cli.parse_args([verb, "a", "b"]).names == ["a", "b"]
    assert cli.parse_args(["watch", "wf"]).name == "wf"
    assert cli.parse_args(["stop", "wf", "--message", "enough"]).message == "enough"
    assert cli.parse_args(["terminate", "wf", "--message", "now"]).message == "now"


def test_retry_and_resubmit_can_wait() -> None:
    retry = cli.parse_args(["retry", "wf", "--watch", "-o", "name"])
    assert (retry.watch, retry.wait, retry.output) == (True, False, "name")
    resubmit = cli.parse_args(["resubmit", "wf", "--wait", "-p", "a=1"])
    assert resubmit.wait and parameters_dict(resubmit.parameters) == {"a": "1"}


def test_resume_and_node_set_pick_the_node_by_name_or_field_selector() -> None:
    assert node_selector(cli.parse_args(["resume", "wf"])) == ""
    assert node_selector(cli.parse_args(["resume", "wf", "--node", "approve"])) == "approve"
    for field in ("displayName", "name", "id"):
        args = cli.parse_args(["resume", "wf", "--node-field-selector", f"{field}=approve"])
        assert node_selector(args) == "approve"
    for bad in ("templateName=gate", "displayName!=x", "approve", "displayName="):
        with pytest.raises(CommandError, match="unsupported --node-field-selector"):
            node_selector(cli.parse_args(["resume", "wf", "--node-field-selector", bad]))


def test_node_set_arguments() -> None:
    args = cli.parse_args(
        ["node", "set", "wf", "--node", "approve", "--output-parameter", "answer=ship it", "--phase", "succeeded"]
    )
    assert (args.name, args.node, args.phase) == ("wf", "approve", "Succeeded")
    assert parameters_dict(args.output_parameters) == {"answer": "ship it"}
    assert cli.parse_args(["node", "set", "wf", "--node", "n", "--phase", "ERROR", "--message", "no"]).phase == "Error"


@pytest.mark.parametrize(
    "argv",
    [
        ["node", "set", "wf", "--output-parameter", "a=b"],  # no node
        ["node", "set", "wf", "--node", "n", "--node-field-selector", "id=n"],  # two nodes
        ["node", "set", "wf", "--node", "n", "--phase", "Running"],
        ["node", "set", "wf", "--node", "n", "--output-parameter", "novalue"],
        ["node"],
        ["resume"],
        ["list", "--running", "--completed"],
        ["get", "wf", "-o", "xml"],
        ["template"],
        ["template", "get"],
        ["semaphore", "set", "limits/looms"],
        ["semaphore", "set", "limits/looms", "-1"],
        ["semaphore", "set", "limits/looms", "many"],
        ["completion", "fish"],
        ["submit", "wf.yaml", "-l", "novalue"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(argv, capsys)


# -- template, semaphore and completion ------------------------------------------------------------


def test_template_verbs() -> None:
    assert cli.parse_args(["template", "create", "a.yaml", "b.yaml", "-o", "name"]).files == ["a.yaml", "b.yaml"]
    assert cli.parse_args(["template", "update", "a.yaml"]).template_verb == "update"
    assert cli.parse_args(["template", "get", "t", "-o", "yaml"]).names == ["t"]
    assert cli.parse_args(["template", "list", "-o", "wide"]).output == "wide"
    assert cli.parse_args(["template", "delete", "--all"]).all
    assert cli.parse_args(["template", "lint", "a.yaml"]).files == ["a.yaml"]


def test_semaphore_verbs() -> None:
    args = cli.parse_args(["semaphore", "set", "limits/looms", "3"])
    assert (args.name, args.limit) == ("limits/looms", 3)
    assert cli.parse_args(["semaphore", "set", "limits/looms", "0"]).limit == 0
    assert cli.parse_args(["semaphore", "delete", "a/b", "c/d"]).names == ["a/b", "c/d"]
    assert cli.parse_args(["semaphore", "list", "-o", "json"]).output == "json"


def test_completion_takes_a_shell() -> None:
    assert cli.parse_args(["completion", "zsh"]).shell == "zsh"


# -- connection flags --------------------------------------------------------------------------


def test_connection_flags_may_come_before_or_after_the_verb(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    before = cli.parse_args(["--secure", "--token", "t1", "--ca-cert", str(ca), "list"])
    after = cli.parse_args(["get", "wf", "--token", "t2", "-k", "--scheduler", "sched:1"])
    assert security_from_args(before).tls and security_from_args(before).token == "t1"
    assert security_from_args(before).ca_cert == str(ca)
    assert security_from_args(after).insecure_skip_verify and security_from_args(after).token == "t2"
    assert client_for(after).scheduler_address == "sched:1"
    plain = security_from_args(cli.parse_args(["list"]))
    assert not plain.uses_tls and plain.token == ""


def test_connection_settings_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    monkeypatch.setenv("TREADLE_TOKEN", "from-env")
    monkeypatch.setenv("TREADLE_SECURE", "true")
    monkeypatch.setenv("TREADLE_CA_CERT", str(ca))
    monkeypatch.setenv("TREADLE_SCHEDULER", "s:2")
    security = security_from_args(cli.parse_args(["list"]))
    assert (security.tls, security.token, security.ca_cert) == (True, "from-env", str(ca))
    assert client_for(cli.parse_args(["list"])).scheduler_address == "s:2"
    assert security_from_args(cli.parse_args(["list", "--token", "flag"])).token == "flag"


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--client-cert", "c.pem", "list"], "needs both --client-cert and --client-key"),
        (["list", "--ca-cert", "/no/ca.pem"], "/no/ca.pem: no such file"),
        (["list", "-k", "--ca-cert", "/no/ca.pem"], "contradict"),
    ],
)
def test_unusable_connection_settings_are_one_line(argv: list[str], problem: str) -> None:
    with pytest.raises(CommandError, match=problem):
        security_from_args(cli.parse_args(argv))


def test_the_verb_is_found_past_connection_flag_values() -> None:
    assert cli._first_positional(["--token", "abc", "--ca-cert", "x.pem", "serve", "all"]) == "serve"


# -- the installed command ---------------------------------------------------------------------


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TREADLE, *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["delete"], "nothing to delete"),
        (["delete", "a", "--completed"], "not both"),
        (["template", "delete"], "or pass --all"),
        (["node", "set", "wf", "--node", "n"], "nothing to set"),
        (["submit"], "name a manifest file"),
        (["list", "--ca-cert", "/no/ca.pem"], "/no/ca.pem: no such file"),
    ],
)
def test_bad_input_is_refused_before_connecting(argv: list[str], problem: str) -> None:
    proc = run(*argv, "--server", "127.0.0.1:1")
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("treadle: ") and problem in lines[0]
    assert proc.stdout == ""


def test_lifecycle_verbs_against_an_unreachable_server_exit_3() -> None:
    proc = run("suspend", "wf", "--server", "127.0.0.1:1")
    assert proc.returncode == 3
    assert proc.stderr.startswith("treadle: cannot reach the treadle server at 127.0.0.1:1")


def test_template_lint_is_offline_and_names_bad_files(tmp_path: Path) -> None:
    good = REPO / "tests" / "conformance" / "manifests" / "templates" / "conformance-spinning.yaml"
    workflow = REPO / "examples" / "hello-world.yaml"
    proc = run("template", "lint", str(good), str(workflow))
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stdout == f"{good}: ok\n"
    assert proc.stderr.startswith(f"treadle: {workflow}: ") and "kind" in proc.stderr
