"""What the CLI reads from its user: manifest files, `-p NAME=VALUE` pairs, parameter files and labels.

Problems become CommandError with one line that names the file, and the
exit code the CLI documents.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from treadle.errors import InvalidSpec

EXIT_OK = 0
EXIT_WORKFLOW_FAILED = 1  # the workflow ran and ended Failed or Error
EXIT_BAD_INPUT = 2  # usage errors, unreadable or invalid manifests, bad -p
EXIT_UNAVAILABLE = 3  # the server could not be reached
EXIT_NOT_FOUND = 4  # no such workflow
EXIT_SERVER_ERROR = 5  # any other error reported by the server
EXIT_INTERRUPTED = 130


def print_error(message: str) -> None:
    """Report a problem as exactly one line on stderr: `treadle: <message>`."""
    import re
    import sys

    one_line = re.sub(r"\s*\n\s*", " ", str(message).strip())
    print(f"treadle: {one_line}", file=sys.stderr, flush=True)


class CommandError(Exception):
    """A problem to report as one line on stderr, ending the command with exit_code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ManifestFile:
    """A manifest as read from disk: the path as the user wrote it, and its text."""

    path: str
    text: str

    def invalid(self, exc: InvalidSpec) -> CommandError:
        """An InvalidSpec about this manifest, as one line that starts with the file name."""
        return CommandError(f"{self.path}: {exc}", EXIT_BAD_INPUT)

    def parse(self) -> dict[str, Any]:
        """The single Workflow document in the file (YAML or JSON)."""
        from treadle.spec.manifest import load_manifest

        try:
            return load_manifest(self.text, source="")
        except InvalidSpec as exc:
            raise self.invalid(exc) from None

    def validate(
        self, *, parameters: dict[str, str] | None = None, entrypoint: str = "", generate_name: str = ""
    ) -> dict[str, Any]:
        """Everything lint can know offline; returns the normalised workflow dict."""
        doc = self.parse()
        from treadle.spec.validate import validate_workflow

        try:
            return validate_workflow(doc, parameters=parameters, entrypoint=entrypoint, generate_name=generate_name)
        except InvalidSpec as exc:
            raise self.invalid(exc) from None


def read_manifest(path: str) -> ManifestFile:
    """Read a manifest file ("-" for stdin) as UTF-8 text."""
    if path == "-":
        import sys

        return ManifestFile("<stdin>", sys.stdin.read())
    try:
        with open(path, encoding="utf-8") as handle:
            return ManifestFile(path, handle.read())
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{path}: is a directory, not a manifest file") from None
    except PermissionError:
        raise CommandError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None


def submission_manifest(path: str | None, source: str | None) -> ManifestFile:
    """What `submit` sends: the manifest file, or for `--from workflowtemplate/NAME` a workflow running it."""
    if not source:
        if not path:
            raise CommandError("name a manifest file (- reads stdin), or pass --from workflowtemplate/NAME")
        return read_manifest(path)
    if path:
        raise CommandError(f"pass a manifest file or --from {source}, not both")
    kind, _, name = source.partition("/")
    if kind.strip().lower() not in ("workflowtemplate", "wftmpl") or not name.strip():
        raise CommandError(f"--from {source!r}: expected workflowtemplate/NAME")
    import json

    name = name.strip()
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{name}-"},
        "spec": {"workflowTemplateRef": {"name": name}},
    }
    return ManifestFile(f"workflowtemplate/{name}", json.dumps(workflow))


def parameter_argument(text: str) -> tuple[str, str]:
    """argparse type for `-p NAME=VALUE`; the value may be empty and may hold '='."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"invalid parameter {text!r}: expected NAME=VALUE")
    return name.strip(), value


def parameters_dict(pairs: Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """The -p pairs by name; a later pair overrides an earlier one, as with argo."""
    return dict(pairs or ())


def labels_argument(text: str) -> list[tuple[str, str]]:
    """argparse type for `-l a=1,b=2` (argo's comma-separated labels); with action="extend"."""
    return [parameter_argument(pair) for pair in text.split(",") if pair.strip()]


def parameter_file_argument(path: str) -> list[tuple[str, str]]:
    """argparse type for `--parameter-file FILE`: a YAML or JSON map of parameter names to values.

    Values that are not strings become their JSON text (3 -> "3", true -> "true",
    [1, 2] -> "[1, 2]"), as argo does; a null value is "".
    """
    import json

    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise argparse.ArgumentTypeError(f"{path}: malformed YAML{where}") from None
    if loaded is None:
        return []
    if not isinstance(loaded, dict):
        raise argparse.ArgumentTypeError(f"{path}: expected a map of parameter names to values")
    pairs = []
    for name, value in loaded.items():
        text = value if isinstance(value, str) else "" if value is None else json.dumps(value)
        pairs.append((str(name), text))
    return pairs


class ParameterFileAction(argparse.Action):
    """Puts a parameter file's pairs before the -p pairs, so that -p overrides the file wherever it stands.

    Files keep their order among themselves: a later file overrides an earlier one.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        pairs = list(getattr(namespace, self.dest, None) or [])
        from_files = getattr(namespace, "parameter_file_pairs", 0)
        setattr(namespace, self.dest, [*pairs[:from_files], *values, *pairs[from_files:]])
        namespace.parameter_file_pairs = from_files + len(values)
