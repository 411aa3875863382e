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
    fast = _build_fast(wire)
    if fast is not None:
        return fast
    msg = workflow_pb2.Workflow()
    try:
        json_format.ParseDict(wire, msg)
    except json_format.ParseError as exc:
        raise InvalidSpec(FieldViolation("", f"invalid manifest: {exc}")) from None
    return msg


# json_format.ParseDict walks the dict in Python, field by field, and is most of what converting a
# spec costs. The common shapes (strings, booleans, whole numbers, string lists and maps, nested
# messages) build the same message much faster by handing the message constructor nested keyword
# dicts. Anything else (well-known types, enums, floats, maps of messages, numbers given as text,
# nulls in lists, a field given twice) goes to ParseDict, with its checks and its errors.
_B_STRING, _B_BOOL, _B_INT, _B_STRINGS, _B_STRING_MAP, _B_MESSAGE, _B_MESSAGES, _B_OTHER = range(8)
_BuildPlan = dict[str, tuple[str, int, Any]]
_BUILD_PLANS: dict[Descriptor, _BuildPlan] = {}
_INTEGERS = {
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
}  # fmt: skip


class _Unusual(Exception):
    """A value the fast paths leave to json_format (ParseDict, MessageToDict)."""


def _build_fast(wire: dict[str, Any]) -> workflow_pb2.Workflow | None:
    try:
        return workflow_pb2.Workflow(**_kwargs(wire, workflow_pb2.Workflow.DESCRIPTOR))
    except (_Unusual, ValueError, TypeError):
        return None


def _build_plan(desc: Descriptor) -> _BuildPlan:
    plan = _BUILD_PLANS.get(desc)
    if plan is None:
        plan = {}
        for f in desc.fields:
            kind, sub = _B_OTHER, None
            if f.message_type is not None:
                entry = f.message_type
                if entry.GetOptions().map_entry:
                    key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
                    if key.type == value.type == FieldDescriptor.TYPE_STRING:
                        kind = _B_STRING_MAP
                elif not entry.full_name.startswith("google.protobuf."):
                    kind, sub = (_B_MESSAGES if f.is_repeated else _B_MESSAGE), entry
            elif f.type == FieldDescriptor.TYPE_STRING:
                kind = _B_STRINGS if f.is_repeated else _B_STRING
            elif not f.is_repeated and f.type == FieldDescriptor.TYPE_BOOL:
                kind = _B_BOOL
            elif not f.is_repeated and f.type in _INTEGERS:
                kind = _B_INT
            plan[f.json_name] = plan[f.name] = (f.name, kind, sub)
        _BUILD_PLANS[desc] = plan
    return plan


def _plain(kind: int, vtype: type, value: Any) -> bool:
    """A value the constructor takes as it is, exactly as ParseDict would read it."""
    if kind == _B_BOOL:
        return vtype is bool
    if kind == _B_INT:
        return vtype is int
    if kind == _B_STRINGS:
        return vtype is list and all(type(item) is str for item in value)
    if kind == _B_STRING_MAP:
        return vtype is dict and all(type(k) is type(v) is str for k, v in value.items())
    return False


def _kwargs(node: Any, desc: Descriptor) -> dict[str, Any]:
    """The constructor's keyword arguments for a message given as a (checked, wire-shaped) dict."""
    if type(node) is not dict:
        raise _Unusual
    plan = _build_plan(desc)
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in node.items():
        entry = plan.get(key)
        if entry is None:
            raise _Unusual
        name, kind, sub = entry
        if name in seen:
            raise _Unusual
        seen.add(name)
        if value is None:
            if kind == _B_OTHER:
                raise _Unusual  # a google.protobuf.Value field takes null as a value
            continue  # ParseDict leaves the field unset
        vtype = type(value)
        if kind == _B_STRING and vtype is str:
            out[name] = value
        elif kind == _B_MESSAGE:
            out[name] = _kwargs(value, sub)
        elif kind == _B_MESSAGES and vtype is list:
            out[name] = [_kwargs(item, sub) for item in value]
        elif _plain(kind, vtype, value):
            out[name] = value
        else:
            raise _Unusual
    return out


def workflow_to_dict(msg: workflow_pb2.Workflow) -> dict[str, Any]:
    """The Argo-shaped dict of a Workflow message (status included when set)."""
    try:
        out = _message_dict(msg)
    except _Unusual:
        out = json_format.MessageToDict(msg)
    _steps_as_lists(out.get("spec", {}))
    return out


def spec_to_dict(spec: workflow_pb2.WorkflowSpec) -> dict[str, Any]:
    try:
        out = _message_dict(spec)
    except _Unusual:
        out = json_format.MessageToDict(spec)
    _steps_as_lists(out)
    return out


def _steps_as_lists(spec: dict[str, Any]) -> None:
    """The manifest's shape of steps groups: a list of lists (the wire has messages holding lists)."""
    for tmpl in spec.get("templates", []):
        if "steps" in tmpl:
            tmpl["steps"] = [group.get("steps", []) for group in tmpl["steps"]]


def spec_from_dict(spec: dict[str, Any]) -> workflow_pb2.WorkflowSpec:
    return workflow_from_dict({"spec": spec}).spec


def spec_from_checked_dict(spec: dict[str, Any]) -> workflow_pb2.WorkflowSpec:
    """spec_from_dict for a spec validate_workflow has just returned, whose fields it checked already."""
    fast = _build_fast(_to_wire_shape({"spec": spec}))
    return fast.spec if fast is not None else spec_from_dict(spec)


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


# How _check_fields treats a field: a scalar (checked by _scalar_problem), a field it does not look into
# (maps, well-known types), or a message (repeated or not) it descends into.
_SCALAR, _OPAQUE, _MESSAGE, _REPEATED_MESSAGE = range(4)
# A singular string field given a string: valid, and by far the most common case.
_PLAIN_STRING = -1
# The field, how it is checked, and the message type of a message field.
_FieldPlan = tuple[FieldDescriptor, int, Any]
_PLANS: dict[Descriptor, dict[str, _FieldPlan]] = {}


def _plan(desc: Descriptor) -> dict[str, _FieldPlan]:
    """Each field of desc by JSON and proto name, with how it is checked (computed once per message type)."""
    plan = _PLANS.get(desc)
    if plan is None:
        plan = {}
        for f in desc.fields:
            if f.message_type is None:
                plain = f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated
                kind = _PLAIN_STRING if plain else _SCALAR
            elif f.message_type.GetOptions().map_entry or f.message_type.full_name.startswith("google.protobuf."):
                kind = _OPAQUE
            else:
                kind = _REPEATED_MESSAGE if f.is_repeated else _MESSAGE
            plan[f.json_name] = plan[f.name] = (f, kind, f.message_type)
        _PLANS[desc] = plan
    return plan


def _check_fields(node: Any, desc: Descriptor, path: str, out: list[FieldViolation]) -> None:
    if not isinstance(node, dict):
        out.append(FieldViolation(path or "manifest", f"expected a mapping, got {_kind(node)}"))
        return
    plan = _plan(desc)
    for key, value in node.items():
        entry = plan.get(key)
        if entry is None:
            out.append(FieldViolation(f"{path}.{key}" if path else key, "field is not supported by treadle"))
            continue
        if value is None:
            continue
        field, kind, message_type = entry
        if kind == _PLAIN_STRING and type(value) is str:
            continue
        if kind <= _SCALAR:
            problem = _scalar_problem(field, value)
            if problem:
                out.append(FieldViolation(f"{path}.{key}" if path else key, problem))
        elif kind == _MESSAGE:
            _check_fields(value, message_type, f"{path}.{key}" if path else key, out)
        elif kind == _REPEATED_MESSAGE:
            sub = f"{path}.{key}" if path else key
            if not isinstance(value, list):
                out.append(FieldViolation(sub, f"expected a list, got {_kind(value)}"))
                continue
            for i, item in enumerate(value):
                _check_fields(item, message_type, f"{sub}[{i}]", out)


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


# json_format.MessageToDict, for messages made of strings, booleans, whole numbers, enums, maps and
# nested messages: the same dict (JSON names, 64-bit numbers as text, enum names, only fields set).
# Floats, bytes and well-known types are left to MessageToDict.
_D_PLAIN, _D_TEXT, _D_ENUM, _D_MESSAGE, _D_MAP, _D_OTHER = range(6)
_TEXT_INTEGERS = {
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64,
}  # fmt: skip
_PLAIN_TYPES = {
    FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32,
}  # fmt: skip
_DICT_PLANS: dict[FieldDescriptor, tuple[int, Any]] = {}


def _dict_plan(field: FieldDescriptor) -> tuple[int, Any]:
    plan = _DICT_PLANS.get(field)
    if plan is None:
        kind: int = _D_OTHER
        extra: Any = None
        if field.message_type is not None:
            entry = field.message_type
            if entry.GetOptions().map_entry:
                key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
                if key.type == FieldDescriptor.TYPE_STRING and value.type == FieldDescriptor.TYPE_STRING:
                    kind = _D_MAP
            elif not entry.full_name.startswith("google.protobuf."):
                kind = _D_MESSAGE
        elif field.type in _PLAIN_TYPES:
            kind = _D_PLAIN
        elif field.type in _TEXT_INTEGERS:
            kind = _D_TEXT
        elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            kind, extra = _D_ENUM, field.enum_type.values_by_number
        plan = _DICT_PLANS[field] = (kind, extra)
    return plan


def _message_dict(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        kind, extra = _dict_plan(field)
        repeated = field.is_repeated
        if kind == _D_PLAIN:
            out[field.json_name] = list(value) if repeated else value
        elif kind == _D_MESSAGE:
            out[field.json_name] = [_message_dict(item) for item in value] if repeated else _message_dict(value)
        elif kind == _D_MAP:
            out[field.json_name] = dict(value)
        elif kind == _D_TEXT:
            out[field.json_name] = [str(item) for item in value] if repeated else str(value)
        elif kind == _D_ENUM:
            values = [extra.get(item) for item in value] if repeated else [extra.get(value)]
            if any(v is None for v in values):
                raise _Unusual  # a number the enum does not name
            names = [v.name for v in values]
            out[field.json_name] = names if repeated else names[0]
        else:
            raise _Unusual
    return out
