"""Reading Argo manifests (YAML or JSON text) into plain dicts."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from treadle.errors import FieldViolation, InvalidSpec

API_VERSION = "argoproj.io/v1alpha1"
# libyaml's loader is many times faster on large manifests; both refuse arbitrary Python objects.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WORKFLOW_KINDS = ("Workflow",)
TEMPLATE_KINDS = ("WorkflowTemplate",)


def load_manifest(text: str, *, source: str = "manifest", kinds: tuple[str, ...] = WORKFLOW_KINDS) -> dict[str, Any]:
    """Parse one manifest document and check its apiVersion and kind.

    Raises InvalidSpec naming the source (usually the file name) for empty
    text, malformed YAML, several documents, or an unexpected kind.
    """
    if not text.strip():
        raise InvalidSpec(FieldViolation(source, "manifest is empty"))
    fast = _json_document(text)
    if fast is not None:
        check_kind(fast, kinds)
        return fast
    try:
        docs = [d for d in yaml.load_all(text, Loader=SAFE_LOADER) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidSpec(FieldViolation(source, f"malformed YAML{where}: {exc.problem}")) from None
    except yaml.YAMLError as exc:
        raise InvalidSpec(FieldViolation(source, f"malformed YAML: {exc}")) from None
    if not docs:
        raise InvalidSpec(FieldViolation(source, "manifest is empty"))
    if len(docs) > 1:
        raise InvalidSpec(FieldViolation(source, f"holds {len(docs)} documents; submit one workflow per file"))
    doc = docs[0]
    if not isinstance(doc, dict):
        raise InvalidSpec(FieldViolation(source, f"expected a mapping at the top level, got {type(doc).__name__}"))
    check_kind(doc, kinds)
    return doc


def check_kind(doc: dict[str, Any], kinds: tuple[str, ...] = WORKFLOW_KINDS) -> None:
    api_version = doc.get("apiVersion", API_VERSION)
    if api_version != API_VERSION:
        raise InvalidSpec(
            FieldViolation("apiVersion", f"unsupported apiVersion {api_version!r}; expected {API_VERSION!r}")
        )
    kind = doc.get("kind")
    if kind is None:
        raise InvalidSpec(FieldViolation("kind", f"kind is required; expected {' or '.join(kinds)}"))
    if kind not in kinds:
        raise InvalidSpec(FieldViolation("kind", f"unknown kind {kind!r}; expected {' or '.join(kinds)}"))


# JSON is YAML, and a JSON manifest parses ~30 times faster with the json module. _json_document takes
# that path only for text whose YAML reading is the very same document; anything else goes to YAML.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"\\u[dD][89abAB]")
# A key whose ":" is on a later line (in JSON a quote, then a line break, then ":" ends a key).
_COLON_ON_NEXT_LINE = re.compile(r'"\s*[\r\n]\s*:')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?')
# libyaml gives up on a mapping key whose ":" is further than this from the key's start.
_MAX_KEY_SPAN = 1024


class _NotTheSame(Exception):
    """The JSON reading of a value would differ from the YAML one."""


def _json_document(text: str) -> dict[str, Any] | None:
    """text parsed as JSON when YAML (PyYAML's safe loader) would read the same mapping from it; else None.

    Where the two readings could differ, the answer is None: text that is not ASCII (YAML folds
    some line breaks JSON keeps, and refuses some characters JSON takes), control characters,
    escaped surrogates, numbers YAML 1.1 reads as strings (1e5, 1.5e3) or not at all (NaN), a key
    whose ":" is on a later line or over 1024 characters away, and anything json refuses.
    """
    if not text.lstrip(" \r\n").startswith("{") or not text.isascii() or _CONTROL.search(text):
        return None
    if "\\u" in text and _SURROGATE.search(text):
        return None
    if _COLON_ON_NEXT_LINE.search(text):
        return None
    if len(text) > _MAX_KEY_SPAN and max(map(len, text.splitlines())) > _MAX_KEY_SPAN:
        # Long lines (compact JSON): measure every key.
        for token in _STRING.finditer(text):
            if token.group(1) and token.end() - token.start() > _MAX_KEY_SPAN:
                return None
    try:
        doc = json.loads(text, parse_float=_yaml_float, parse_constant=_not_yaml)
    except (ValueError, RecursionError, _NotTheSame):
        return None
    return doc if isinstance(doc, dict) else None


def _yaml_float(literal: str) -> float:
    """A JSON number with a fraction or exponent, if YAML 1.1 reads it as a float: a "." and a signed exponent."""
    exponent = max(literal.find("e"), literal.find("E"))
    if "." not in literal or (exponent >= 0 and literal[exponent + 1] not in "+-"):
        raise _NotTheSame(literal)
    return float(literal)


def _not_yaml(literal: str) -> Any:
    raise _NotTheSame(literal)  # NaN, Infinity: plain strings in YAML
