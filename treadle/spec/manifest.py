"""Reading Argo manifests (YAML or JSON text) into plain dicts."""

from __future__ import annotations

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
