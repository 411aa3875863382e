"""From a submit or lint request to a validated, normalised workflow dict, and then to a record."""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from treadle.errors import FieldViolation, InvalidSpec
from treadle.services.admission.repository import WorkflowRecord
from treadle.spec.convert import spec_from_checked_dict, spec_from_dict, workflow_to_dict
from treadle.spec.manifest import load_manifest
from treadle.spec.validate import validate_workflow
from treadle.workflow.v1 import workflow_pb2

DEFAULT_NAMESPACE = "default"
# The resource version of a workflow the scheduler has not taken yet; every version the scheduler gives is greater.
ADMITTED_VERSION = 0
GENERATED_SUFFIX_LENGTH = 5
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_ALPHABET_SIZE = len(_SUFFIX_ALPHABET)
_UNBIASED = 256 - 256 % _ALPHABET_SIZE


@dataclass(frozen=True)
class Submission:
    """A workflow as a client handed it in: typed or as manifest text, plus overrides."""

    workflow: workflow_pb2.Workflow | None = None
    manifest: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    entrypoint: str = ""
    generate_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    request_id: str = ""


async def normalize(
    submission: Submission, resolve: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """The validated Argo-shaped workflow dict, overrides applied. Raises InvalidSpec.

    resolve, when given, copies in the WorkflowTemplates the workflow refers to before it is checked.
    """
    _check_labels(submission.labels)
    doc = _parse_source(submission)
    if resolve is not None:
        doc = await resolve(doc)
    if submission.labels:
        metadata = doc.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidSpec(FieldViolation("metadata", "expected a mapping"))
        metadata = doc["metadata"] = dict(metadata or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **submission.labels}
    return validate_workflow(
        doc,
        parameters=submission.parameters,
        entrypoint=submission.entrypoint,
        generate_name=submission.generate_name,
    )


def new_record(workflow: dict[str, Any], *, request_id: str = "") -> WorkflowRecord:
    """A record for a normalised workflow: its name (generated when asked for), a uid and a creation time."""
    metadata = workflow.get("metadata") or {}
    generate_name = str(metadata.get("generateName") or "")
    name = str(metadata.get("name") or "") or generated_name(generate_name)
    return WorkflowRecord(
        name=name,
        uid=str(uuid.uuid4()),
        namespace=str(metadata.get("namespace") or DEFAULT_NAMESPACE),
        generate_name=generate_name,
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()},
        created_at_ns=time.time_ns(),
        spec=workflow.get("spec") or {},
        request_id=request_id,
    )


def generated_name(prefix: str) -> str:
    """prefix and GENERATED_SUFFIX_LENGTH random characters of _SUFFIX_ALPHABET, uniformly drawn."""
    suffix = ""
    while len(suffix) < GENERATED_SUFFIX_LENGTH:
        # One read of the system's randomness for the whole suffix; bytes past the largest multiple
        # of the alphabet's size are dropped so that every character stays equally likely.
        suffix += "".join(_SUFFIX_ALPHABET[b % _ALPHABET_SIZE] for b in secrets.token_bytes(8) if b < _UNBIASED)
    return prefix + suffix[:GENERATED_SUFFIX_LENGTH]


def to_workflow(
    record: WorkflowRecord, status: workflow_pb2.WorkflowStatus | None = None, resource_version: int | None = None
) -> workflow_pb2.Workflow:
    """The wire form of a record, with a status and its resource version when they are given."""
    created = Timestamp()
    created.FromNanoseconds(record.created_at_ns)
    metadata = workflow_pb2.ObjectMeta(
        name=record.name,
        generate_name=record.generate_name,
        namespace=record.namespace,
        uid=record.uid,
        labels=record.labels,
        annotations=record.annotations,
        creation_timestamp=created,
        resource_version="" if resource_version is None else str(resource_version),
    )
    return workflow_pb2.Workflow(metadata=metadata, spec=_spec_message(record), status=status)


_SPEC_CACHE: OrderedDict[str, workflow_pb2.WorkflowSpec] = OrderedDict()
_SPEC_CACHE_SIZE = 256


def _spec_message(record: WorkflowRecord) -> workflow_pb2.WorkflowSpec:
    """A stored spec never changes, and converting it costs more than everything else a watch event does."""
    if not record.uid:
        return spec_from_dict(record.spec)
    cached = _SPEC_CACHE.get(record.uid)
    if cached is None:
        cached = _SPEC_CACHE[record.uid] = spec_from_dict(record.spec)
        if len(_SPEC_CACHE) > _SPEC_CACHE_SIZE:
            _SPEC_CACHE.popitem(last=False)
    else:
        _SPEC_CACHE.move_to_end(record.uid)
    return cached


def remember_spec(record: WorkflowRecord) -> None:
    """Cache the message of a spec validate_workflow has just checked: it needs no second check."""
    if record.uid and record.uid not in _SPEC_CACHE:
        _SPEC_CACHE[record.uid] = spec_from_checked_dict(record.spec)
        if len(_SPEC_CACHE) > _SPEC_CACHE_SIZE:
            _SPEC_CACHE.popitem(last=False)


def pending_status() -> workflow_pb2.WorkflowStatus:
    return workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_PENDING)


def _parse_source(submission: Submission) -> dict[str, Any]:
    if submission.workflow is not None:
        doc = workflow_to_dict(submission.workflow)
        doc.pop("status", None)
        return doc
    if submission.manifest is not None:
        return load_manifest(submission.manifest, source="manifest")
    raise InvalidSpec(FieldViolation("source", "a workflow or a manifest is required"))


def _check_labels(labels: dict[str, str]) -> None:
    violations = [FieldViolation(f"labels[{key!r}]", "label key must not be empty") for key in labels if not key]
    if violations:
        raise InvalidSpec(violations)
