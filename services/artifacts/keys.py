"""Object keys: the repository's key format, and the rules every key obeys.

A key is a relative, '/'-separated path. Keys end up as file paths in the local
store and as object names in S3, so anything that could climb out of the
repository root (``..``, absolute paths, backslashes, NUL) is refused here,
once, before any store sees the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from treadle.errors import FieldViolation, InvalidSpec

# Argo's default artifact key: {{workflow.name}}/{{pod.name}}, then the file name.
DEFAULT_KEY_FORMAT = "{{workflow.name}}/{{pod.name}}/{{artifact.name}}"
MAX_KEY_BYTES = 1024  # S3's limit, so a key valid here is valid everywhere.
MAX_SUFFIX_CHARS = 32
# Keys whose first segment starts with this are the stores' own (S3 uploads in progress).
RESERVED_PREFIX = ".treadle"

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_VARIABLES = ("workflow.name", "pod.name", "artifact.name")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ArtifactTarget:
    """What an upload names: the parts the key format is filled from."""

    workflow: str
    pod_name: str
    artifact_name: str
    suffix: str = ""


class KeyFormat:
    """A key template such as ``{{workflow.name}}/{{pod.name}}/{{artifact.name}}``.

    The rendered key gets the target's suffix (for example ``.tgz``) appended.
    """

    def __init__(self, template: str = DEFAULT_KEY_FORMAT) -> None:
        unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - set(_VARIABLES))
        if unknown:
            raise InvalidSpec(
                f"unknown variable(s) {', '.join(unknown)}; use {', '.join(_VARIABLES)}", field="keyFormat"
            )
        canonical = _PLACEHOLDER.sub(lambda m: "{{" + m.group(1) + "}}", template)
        if "{{artifact.name}}" not in canonical:
            # Without the artifact name two artifacts of one pod would overwrite each other.
            raise InvalidSpec("key format must contain {{artifact.name}}", field="keyFormat")
        head, marker, _ = canonical.partition("{{workflow.name}}/")
        if not marker or _PLACEHOLDER.search(head) or (head and not head.endswith("/")):
            # Step tokens are scoped to a workflow by key prefix, so the workflow must be a
            # whole segment with only fixed segments before it.
            raise InvalidSpec(
                "key format must have {{workflow.name}} as a whole segment after fixed segments only",
                field="keyFormat",
            )
        self.template = canonical
        self._head = head

    def render(self, target: ArtifactTarget) -> str:
        values = {
            "workflow.name": _segment_value(target.workflow, "workflow"),
            "pod.name": _segment_value(target.pod_name, "pod_name"),
            "artifact.name": _segment_value(target.artifact_name, "artifact_name"),
        }
        key = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template) + _suffix(target.suffix)
        return validate_key(key)

    def workflow_prefix(self, workflow: str) -> str:
        """The prefix every key of one workflow starts with, for example ``"wf-1/"``."""
        return f"{self._head}{_segment_value(workflow, 'workflow')}/"


def validate_key(key: str, *, field: str = "key") -> str:
    """Return key unchanged when it is a safe relative key; raise InvalidSpec naming it otherwise."""
    problem = _key_problem(key)
    if problem:
        raise InvalidSpec(f"artifact key {key!r} {problem}", field=field)
    return key


def validate_prefix(prefix: str, *, field: str = "prefix") -> str:
    """A list prefix: empty, or a key's leading part (it may end inside a segment or with '/')."""
    if not prefix:
        return prefix
    # Check it as a key after dropping one trailing '/', and after completing a partial
    # last segment, so "wf/" and "wf/po" pass while "../" and "wf//" do not.
    probe = prefix[:-1] if prefix.endswith("/") else prefix
    problem = _key_problem(probe) if probe else "is not a valid prefix"
    if problem:
        raise InvalidSpec(f"artifact key prefix {prefix!r} {problem}", field=field)
    return prefix


def _key_problem(key: str) -> str:
    if not key:
        return "is empty"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if "\x00" in key:
        return "contains a NUL character"
    if _CONTROL.search(key):
        return "contains a control character"
    if "\\" in key:
        return "contains a backslash"
    if key.startswith("/"):
        return "is absolute"
    if key.startswith(RESERVED_PREFIX):
        return f"starts with {RESERVED_PREFIX!r}, which is reserved for treadle's own objects"
    for segment in key.split("/"):
        if segment == "":
            return "has an empty path segment"
        if segment in (".", ".."):
            return f"has a {segment!r} path segment"
    return ""


def _segment_value(value: str, field: str) -> str:
    """A variable's value must fill exactly one key segment."""
    if not value:
        raise InvalidSpec("must not be empty", field=field)
    if "/" in value or value in (".", ".."):
        raise InvalidSpec(f"{value!r} is not a single path segment", field=field)
    return value


def _suffix(suffix: str) -> str:
    if len(suffix) > MAX_SUFFIX_CHARS or "/" in suffix or (suffix and not suffix.startswith(".")):
        raise InvalidSpec(
            [FieldViolation("suffix", f"{suffix!r} must be empty or a short file extension such as '.tgz'")]
        )
    return suffix
