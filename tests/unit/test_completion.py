"""`treadle completion bash|zsh`: the scripts load in a real shell and complete verbs, flags and names.

Workflow, template and semaphore names come from the program being completed;
here that is a stub that prints names and records the arguments it got.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from treadle.client import cli
from treadle.client.completion import bash_script, command_shapes

REPO = Path(__file__).resolve().parents[2]
TREADLE = str(Path(sys.executable).parent / "treadle")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    proc = subprocess.run([TREADLE, "completion", "bash"], capture_output=True, text=True, timeout=60, check=True)
    path = tmp_path_factory.mktemp("completion") / "treadle.bash"
    path.write_text(proc.stdout)
    return path


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for treadle that answers the name listings and logs its arguments."""
    directory = tmp_path_factory.mktemp("stub")
    path = directory / "treadle"
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {directory}/calls\n'
        'case "$*" in\n'
        '  *"template list -o name") echo "spinning weaving" ;;\n'
        '  *"semaphore list -o name") echo "limits/looms" ;;\n'
        '  *"list -o name") printf "wf-one\\nwf-two\\nother\\n" ;;\n'
        "esac\n"
    )
    path.chmod(0o755)
    return path


def complete(script: Path, *words: str, program: str = "treadle") -> list[str]:
    """What the completion function offers for the command line words (the last one is being typed)."""
    quoted = " ".join(f"'{w}'" for w in (program, *words))
    code = (
        f"source {script}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n"
        '_treadle; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, cwd=REPO, timeout=30, check=True)
    assert proc.stderr == ""
    return [line for line in proc.stdout.splitlines() if line]


def test_the_script_is_valid_bash(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    assert "complete -F _treadle treadle" in script.read_text()


def test_verbs_and_sub_verbs(script: Path) -> None:
    assert complete(script, "su") == ["submit", "suspend"]
    assert complete(script, "template", "") == ["create", "get", "list", "update", "delete", "lint"]
    assert complete(script, "semaphore", "") == ["set", "delete", "list"]
    assert complete(script, "node", "") == ["set"]
    # Top-level flags and their values do not count as the verb.
    assert complete(script, "--server", "h:1", "--token", "t", "te") == ["terminate", "template"]


def test_flags_and_their_values(script: Path) -> None:
    assert complete(script, "list", "--run") == ["--running"]
    assert complete(script, "node", "set", "wf", "--ph") == ["--phase"]
    assert complete(script, "submit", "f.yaml", "-o", "") == ["name", "json", "yaml"]
    assert complete(script, "list", "-o", "w") == ["wide"]
    assert complete(script, "node", "set", "wf", "--phase", "") == ["Succeeded", "Failed", "Error"]
    assert complete(script, "completion", "") == ["bash", "zsh"]


def test_files_where_a_file_goes(script: Path) -> None:
    assert "examples/hello-world.yaml" in complete(script, "submit", "examples/hello")
    assert "examples/parameters.yaml" in complete(script, "submit", "-f", "examples/par")
    assert "examples/steps.yaml" in complete(script, "template", "lint", "examples/st")


def test_names_come_from_the_server_the_command_line_names(script: Path, stub: Path) -> None:
    assert complete(script, "--server", "h:7", "get", "wf-", program=str(stub)) == ["wf-one", "wf-two"]
    assert complete(script, "template", "get", "", program=str(stub)) == ["spinning", "weaving"]
    assert complete(script, "semaphore", "delete", "", program=str(stub)) == ["limits/looms"]
    calls = (stub.parent / "calls").read_text().splitlines()
    assert calls[0] == "--server h:7 list -o name"


def test_every_verb_of_the_parser_is_known_to_the_script() -> None:
    shapes = {shape.path: shape for shape in command_shapes(cli.build_parser())}
    assert {"submit", "node set", "template update", "semaphore list", "completion"} <= set(shapes)
    assert shapes["node set"].positional == "workflow"
    assert shapes["template get"].positional == "template"
    assert shapes["submit"].value_options["--parameter-file"] == "file"
    script = bash_script(cli.build_parser())
    assert "'template update')" in script


@pytest.mark.skipif(shutil.which("zsh") is None, reason="needs zsh")
def test_the_zsh_script_loads() -> None:
    proc = subprocess.run([TREADLE, "completion", "zsh"], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.startswith("#compdef treadle")
    loaded = subprocess.run(
        ["zsh", "-c", "source /dev/stdin; whence -w _treadle"],
        input=proc.stdout,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "function" in loaded.stdout, loaded.stderr
