"""Convert between the Argo-shaped workflow dict and the typed proto messages.

The dict form is what manifests hold and what the pure core works on
(camelCase keys, `steps` as a list of lists). The proto form is what travels
on the wire. Fields the proto does not declare are not supported by treadle
and are rejected with their full path.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from treadle.errors import FieldViolation, InvalidSpec
from treadle.workflow.v1 import workflow_pb2

# Keys Kubernetes tooling adds that carry no meaning for a run.
_IGNORED_TOP_LEVEL = {"apiVersion", "kind"}
# Fields whose YAML value may be a number or a boolean; Argo keeps them as text.
_STRINGISH = {
    "value", "default", "limit", "factor", "duration", "maxDuration", "cap", "activeDeadlineSeconds", "timeout",
    "count", "start", "end",
}  # fmt: skip
_STRING_LIST_FIELDS = {"command", "args", "dependencies"}
_GROUP_PATH = re.compile(r"steps\[(\d+)\]\.steps\[(\d+)\]")


def check_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """Reject fields treadle does not support and values of the wrong type, by path; return the wire shape."""
    body = {k: v for k, v in doc.items() if k not in _IGNORED_TOP_LEVEL and k != "status"}
    wire: dict[str, Any] = _to_wire_shape(body)
    violations: list[FieldViolation] = []
    _check_fields(wire, workflow_pb2.Workflow.DESCRIPTOR, "", violations)
    if violations:
        raise InvalidSpec([FieldViolation(_manifest_path(v.field), v.description) for v in violations])
    return wire


def workflow_from_dict(doc: dict[str, Any]) -> workflow_pb2.Workflow:
    """Build a Workflow message from an Argo-shaped dict (a parsed manifest)."""
    wire = check_fields(doc)
    msg = workflow_pb2.Workflow()
    try:
        json_format.ParseDict(wire, msg)
    except json_format.ParseError as exc:
        raise InvalidSpec(FieldViolation("", f"invalid manifest: {exc}")) from None
    return msg


def workflow_to_dict(msg: workflow_pb2.Workflow) -> dict[str, Any]:
    """The Argo-shaped dict of a Workflow message (status included when set)."""
    out = json_format.MessageToDict(msg)
    for tmpl in out.get("spec", {}).get("templates", []):
        if "steps" in tmpl:
            tmpl["steps"] = [group.get("steps", []) for group in tmpl["steps"]]
    return out


def spec_to_dict(spec: workflow_pb2.WorkflowSpec) -> dict[str, Any]:
    out: dict[str, Any] = workflow_to_dict(workflow_pb2.Workflow(spec=spec)).get("spec", {})
    return out


def spec_from_dict(spec: dict[str, Any]) -> workflow_pb2.WorkflowSpec:
    return workflow_from_dict({"spec": spec}).spec


def template_from_dict(tmpl: dict[str, Any]) -> workflow_pb2.Template:
    return workflow_from_dict({"spec": {"templates": [tmpl]}}).spec.templates[0]


def template_to_dict(tmpl: workflow_pb2.Template) -> dict[str, Any]:
    out: dict[str, Any] = spec_to_dict(workflow_pb2.WorkflowSpec(templates=[tmpl]))["templates"][0]
    return out


def _to_wire_shape(node: Any, key: str = "") -> Any:
    """Adapt the manifest's shapes to proto3 JSON: steps groups, stringish values."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "steps" and isinstance(v, list):
                out[k] = [
                    {"steps": _to_wire_shape(g, "steps")} if isinstance(g, list) else _to_wire_shape(g) for g in v
                ]
            elif k in _STRINGISH and isinstance(v, (bool, int, float)):
                out[k] = _scalar_text(v)
            elif k in _STRING_LIST_FIELDS and isinstance(v, list):
                out[k] = [_scalar_text(i) if isinstance(i, (bool, int, float)) else i for i in v]
            else:
                out[k] = _to_wire_shape(v, k)
        return out
    if isinstance(node, list):
        return [_to_wire_shape(i, key) for i in node]
    return node


def _manifest_path(wire_path: str) -> str:
    """Undo the wire shape of steps groups in a path: steps[1].steps[0] -> steps[1][0]."""
    return _GROUP_PATH.sub(r"steps[\1][\2]", wire_path)


def _scalar_text(v: bool | int | float) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _check_fields(node: Any, desc: Descriptor, path: str, out: list[FieldViolation]) -> None:
    if not isinstance(node, dict):
        out.append(FieldViolation(path or "manifest", f"expected a mapping, got {_kind(node)}"))
        return
    by_name: dict[str, FieldDescriptor] = {}
    for f in desc.fields:
        by_name[f.json_name] = f
        by_name[f.name] = f
    for key, value in node.items():
        sub = f"{path}.{key}" if path else key
        field = by_name.get(key)
        if field is None:
            out.append(FieldViolation(sub, "field is not supported by treadle"))
            continue
        if value is None:
            continue
        if field.message_type is None:
            problem = _scalar_problem(field, value)
            if problem:
                out.append(FieldViolation(sub, problem))
            continue
        if field.message_type.GetOptions().map_entry:
            continue
        if field.message_type.full_name.startswith("google.protobuf."):
            continue
        if field.is_repeated:
            if not isinstance(value, list):
                out.append(FieldViolation(sub, f"expected a list, got {_kind(value)}"))
                continue
            for i, item in enumerate(value):
                _check_fields(item, field.message_type, f"{sub}[{i}]", out)
        else:
            _check_fields(value, field.message_type, sub, out)


_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
}  # fmt: skip


def _scalar_problem(field: FieldDescriptor, value: Any) -> str:
    values = value if field.is_repeated and isinstance(value, list) else [value]
    if field.is_repeated and not isinstance(value, list):
        return f"expected a list, got {_kind(value)}"
    for item in values:
        if field.type == FieldDescriptor.TYPE_STRING and not isinstance(item, str):
            return f"expected a string, got {_kind(item)}"
        if field.type == FieldDescriptor.TYPE_BOOL and not isinstance(item, bool):
            return f"expected true or false, got {_kind(item)}"
        whole = isinstance(item, int) or (isinstance(item, str) and item.lstrip("-").isdigit())
        if field.type in _INTEGER_TYPES and (isinstance(item, bool) or not whole):
            return f"expected a whole number, got {item!r}"
    return ""


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)
