"""The `treadle` command line: argument parsing, -p pairs, and one-line errors.

The subprocess tests run the installed console script, `.venv/bin/treadle`,
the way a user does; they need no server (lint is offline).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from treadle.client import cli
from treadle.client.inputs import EXIT_BAD_INPUT, parameter_argument, parameters_dict

REPO = Path(__file__).resolve().parents[2]
TREADLE = str(Path(sys.executable).parent / "treadle")
MANIFESTS = REPO / "tests" / "e2e" / "manifests"
EXAMPLES = REPO / "examples"


def treadle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TREADLE, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=60, check=False)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("treadle: ")
    return lines[0]


# -- parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pair"),
    [("who=world", ("who", "world")), ("empty=", ("empty", "")), ("eq=a=b", ("eq", "a=b")), (" x =1", ("x", "1"))],
)
def test_parameter_pairs(text: str, pair: tuple[str, str]) -> None:
    assert parameter_argument(text) == pair


@pytest.mark.parametrize("text", ["novalue", "=value", "", " =x"])
def test_bad_parameter_pairs(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=VALUE"):
        parameter_argument(text)


def test_later_parameters_override_earlier_ones() -> None:
    args = cli.parse_args(["run", "f.yaml", "-p", "a=1", "-p", "b=2", "--parameter", "a=3"])
    assert parameters_dict(args.parameters) == {"a": "3", "b": "2"}


def test_run_arguments() -> None:
    args = cli.parse_args(["run", "wf.yaml", "--entrypoint", "alt", "-o", "json", "--data-dir", "/tmp/d"])
    assert (args.verb, args.file, args.entrypoint, args.output, args.data_dir) == (
        "run",
        "wf.yaml",
        "alt",
        "json",
        "/tmp/d",
    )
    assert args.parameters is None


def test_server_defaults_to_env_then_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.SERVER_ENV, raising=False)
    args = cli.parse_args(["list"])
    assert (args.server, args.server_given) == ("127.0.0.1:7733", False)
    monkeypatch.setenv(cli.SERVER_ENV, "loom:9000")
    assert cli.parse_args(["list"]).server == "loom:9000"


def test_server_may_come_before_or_after_the_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.SERVER_ENV, "from-env:1")
    before = cli.parse_args(["--server", "a:1", "get", "wf"])
    after = cli.parse_args(["get", "wf", "--server", "b:2"])
    assert (before.server, before.server_given) == ("a:1", True)
    assert (after.server, after.server_given) == ("b:2", True)


def test_submit_arguments() -> None:
    args = cli.parse_args(
        ["submit", "wf.yaml", "-p", "x=1", "--generate-name", "g-", "--watch", "-o", "name", "-l", "team=a"]
    )
    assert (args.file, args.generate_name, args.watch, args.output) == ("wf.yaml", "g-", True, "name")
    assert parameters_dict(args.labels) == {"team": "a"}


def test_list_filters() -> None:
    from treadle.client.commands import list_filter
    from treadle.client.inputs import CommandError
    from treadle.workflow.v1 import workflow_pb2 as wf_pb

    args = cli.parse_args(["list", "-l", "team=a", "--status", "running,Failed", "--status", "Error", "--prefix", "x-"])
    filters = list_filter(args)
    assert filters.label_selector == "team=a" and filters.name_prefix == "x-"
    assert filters.phases == (wf_pb.WORKFLOW_PHASE_RUNNING, wf_pb.WORKFLOW_PHASE_FAILED, wf_pb.WORKFLOW_PHASE_ERROR)
    with pytest.raises(CommandError, match="unknown status 'Done'"):
        list_filter(cli.parse_args(["list", "--status", "Done"]))


def test_verbs_take_their_arguments() -> None:
    assert cli.parse_args(["logs", "wf", "--node", "step-a"]).node == "step-a"
    assert cli.parse_args(["delete", "a", "b"]).names == ["a", "b"]
    assert cli.parse_args(["lint", "a.yaml", "b.yaml"]).files == ["a.yaml", "b.yaml"]
    assert cli.parse_args(["get", "wf", "-o", "json"]).output == "json"
    assert cli.parse_args(["wait", "wf", "--timeout", "2.5"]).timeout == 2.5


def test_the_verb_is_found_past_the_server_option() -> None:
    assert cli._first_positional(["--server", "h:1", "serve", "all"]) == "serve"
    assert cli._first_positional(["-h"]) == ""


def test_serve_takes_the_server_module_arguments() -> None:
    pytest.importorskip("treadle.services.server")
    args = cli.parse_args(["serve", "all", "--listen", "127.0.0.1:0", "--data-dir", "/tmp/x"])
    assert (args.service, args.listen, str(args.data_dir)) == ("all", "127.0.0.1:0", "/tmp/x")


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["run"], ["run", "f.yaml", "-p", "oops"], ["get", "x", "-o", "xml"], ["list", "--what"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("treadle: ")


# -- the installed command --------------------------------------------------------


def test_version() -> None:
    proc = treadle("version")
    assert proc.returncode == 0 and proc.stdout.startswith("treadle ")


def test_bad_parameter_syntax_is_one_line() -> None:
    proc = treadle("run", str(EXAMPLES / "parameters.yaml"), "-p", "audience")
    assert proc.returncode == EXIT_BAD_INPUT
    assert "'audience'" in one_error_line(proc) and "NAME=VALUE" in proc.stderr
    assert proc.stdout == ""


def test_lint_of_a_missing_file_names_it() -> None:
    proc = treadle("lint", "examples/no-such-loom.yaml")
    assert proc.returncode == EXIT_BAD_INPUT
    assert one_error_line(proc) == "treadle: examples/no-such-loom.yaml: no such file"


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("empty.yaml", "manifest is empty"),
        ("malformed.yaml", "malformed YAML at line 12"),
        ("unknown-kind.yaml", "kind: unknown kind 'CronLoom'"),
        ("unknown-template.yaml", "template 'spin-yarn' not found"),
        ("cycle.yaml", "cycle"),
        ("missing-parameter.yaml", "'recipient'"),
        ("missing-argument.yaml", "'bolt-length'"),
        (
            "undefined-reference.yaml",
            "spec.templates[0].container.args[0]: undefined reference {{inputs.parameters.nope}}",
        ),
    ],
)
def test_lint_reports_a_bad_manifest_in_one_line(name: str, needle: str) -> None:
    path = f"tests/e2e/manifests/{name}"
    proc = treadle("lint", path)
    assert proc.returncode == EXIT_BAD_INPUT
    line = one_error_line(proc)
    assert line.startswith(f"treadle: {path}: ")
    assert needle in line
    assert proc.stdout == ""


def test_lint_of_a_directory_names_it(tmp_path: Path) -> None:
    proc = treadle("lint", str(tmp_path))
    assert proc.returncode == EXIT_BAD_INPUT
    assert one_error_line(proc) == f"treadle: {tmp_path}: is a directory, not a manifest file"


def test_lint_accepts_parameters() -> None:
    proc = treadle("lint", "-p", "bolt-length=3", "tests/e2e/manifests/missing-argument.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "tests/e2e/manifests/missing-argument.yaml: ok\n"


def test_lint_checks_every_file_and_reports_each_bad_one() -> None:
    proc = treadle("lint", "examples/hello-world.yaml", "tests/e2e/manifests/empty.yaml", "missing.yaml")
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stdout == "examples/hello-world.yaml: ok\n"
    assert [line.split(":")[1].strip() for line in proc.stderr.splitlines()] == [
        "tests/e2e/manifests/empty.yaml",
        "missing.yaml",
    ]


def test_every_example_lints_clean() -> None:
    examples = sorted(str(p.relative_to(REPO)) for p in EXAMPLES.glob("*.yaml"))
    assert examples
    proc = treadle("lint", *examples)
    assert proc.returncode == 0, proc.stderr


def test_run_rejects_bad_input_before_starting_anything() -> None:
    proc = treadle("run", "tests/e2e/manifests/cycle.yaml", "-o", "json")
    assert proc.returncode == EXIT_BAD_INPUT
    assert one_error_line(proc).startswith("treadle: tests/e2e/manifests/cycle.yaml: ")
    assert proc.stdout == ""


def test_an_unreachable_server_is_one_line_and_exit_3() -> None:
    proc = treadle("get", "anything", "--server", "127.0.0.1:1")
    assert proc.returncode == 3
    assert one_error_line(proc).startswith("treadle: cannot reach the treadle server at 127.0.0.1:1")
