"""The spec's fast paths give exactly what the slow ones give.

- JSON manifests are parsed by the json module when YAML would read the same document;
- dicts become Workflow messages through the message constructor instead of
  json_format.ParseDict, and messages become dicts without json_format.MessageToDict;
- manifests are copied without copy.deepcopy.

Each is compared with the slow path over the repository's manifests and seeded random
variations of them, errors included.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from treadle.errors import InvalidSpec
from treadle.spec import convert
from treadle.spec.manifest import SAFE_LOADER, _json_document, load_manifest
from treadle.spec.tree import deep_copy
from treadle.spec.validate import validate_workflow
from treadle.workflow.v1 import workflow_pb2

REPO = Path(__file__).resolve().parents[2]


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted([*REPO.glob("examples/**/*.yaml"), *REPO.glob("tests/**/*.yaml")]):
        try:
            docs += [d for d in yaml.load_all(path.read_text(), Loader=SAFE_LOADER) if isinstance(d, dict)]
        except yaml.YAMLError:
            continue  # the deliberately malformed ones
    assert len(docs) > 50
    return docs


def same(a: Any, b: Any, *, ordered: bool = True) -> bool:
    """Equal, with the same types all the way down (1 == 1.0 == True is not enough), and with keys in
    the same order unless ordered is False (a proto map's order is its own, even between copies)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        keys_match = list(a) == list(b) if ordered else sorted(map(str, a)) == sorted(map(str, b))
        return keys_match and all(same(a[k], b[k], ordered=ordered) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, ordered=ordered) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def yaml_reading(text: str) -> Any:
    try:
        docs = [d for d in yaml.load_all(text, Loader=SAFE_LOADER) if d is not None]
    except yaml.YAMLError:
        return "error"
    return docs[0] if len(docs) == 1 else "several"


CHARS = ["a", " ", ":", "#", "-", "\\", '"', "\n", "\t", "é", "\x85", "\u2028", "\x7f", "\x00", "\ud83d", "😀", "/"]


def random_value(rnd: random.Random, depth: int = 0) -> Any:
    def text() -> str:
        length = rnd.choice([0, 1, 3, 8, 8, 8, 1030]) if rnd.random() < 0.1 else rnd.randint(0, 6)
        return "".join(rnd.choice(CHARS) if rnd.random() < 0.3 else rnd.choice("abcz09") for _ in range(length))

    roll = rnd.random()
    if depth > 3 or roll < 0.4:
        return rnd.choice(
            [
                text(),
                rnd.randint(-(10**6), 10**6),
                rnd.choice([0.5, -1.25, 1e5, 1.5e-7, 1e300, -0.0, 2.0, 1e16, float("nan"), float("inf")]),
                rnd.choice([True, False, None]),
            ]
        )
    if roll < 0.7:
        return {text(): random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    return [random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]


def render(rnd: random.Random, doc: Any) -> str:
    text = json.dumps(
        doc,
        indent=rnd.choice([None, 0, 1, 2, "\t"]),
        separators=rnd.choice([None, (",", ":"), (", ", " : ")]),
        ensure_ascii=rnd.random() < 0.7,
    )
    if rnd.random() < 0.1:
        text = text.replace(": ", rnd.choice(["\n: ", " :\n", ":\r\n"]), 1)
    if rnd.random() < 0.05:
        text = rnd.choice([" ", "\n", "\ufeff", "\t"]) + text
    return text


def test_json_manifests_read_as_yaml_reads_them() -> None:
    rnd = random.Random(8)
    fast = 0
    texts = [json.dumps(doc, indent=indent) for doc in manifests() for indent in (None, 1)]
    texts += [render(rnd, {"k": random_value(rnd)}) for _ in range(4000)]
    for text in texts:
        got = _json_document(text)
        if got is not None:
            fast += 1
            assert same(got, yaml_reading(text)), text
    assert fast > len(texts) // 3


def test_load_manifest_errors_are_unchanged_for_json_text() -> None:
    with pytest.raises(InvalidSpec, match="unknown kind 'Pod'"):
        load_manifest(json.dumps({"apiVersion": "argoproj.io/v1alpha1", "kind": "Pod"}))
    with pytest.raises(InvalidSpec, match="malformed YAML"):
        load_manifest('{"kind": "Workflow",')
    with pytest.raises(InvalidSpec, match="expected a mapping at the top level"):
        load_manifest("[1, 2]")


def mutated(rnd: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for _ in range(rnd.randint(1, 3)):
        node: Any = out
        while True:
            if isinstance(node, dict) and node:
                key = rnd.choice(list(node))
                roll = rnd.random()
                if roll < 0.15:
                    node[key] = None
                elif roll < 0.25:
                    node[key] = rnd.choice([1, True, "x", 2**40, -1, 1.5, [], {}, ["a", None], {"a": 1}, {1: "a"}])
                elif roll < 0.3 and isinstance(key, str):
                    node["".join("_" + c.lower() if c.isupper() else c for c in key)] = copy.deepcopy(node[key])
                else:
                    node = node[key]
                    continue
            elif isinstance(node, list) and node:
                index = rnd.randrange(len(node))
                if rnd.random() < 0.2:
                    node[index] = None
                else:
                    node = node[index]
                    continue
            break
    return out


def test_dicts_become_the_messages_parse_dict_makes() -> None:
    rnd = random.Random(3)
    cases = manifests()
    for doc in list(cases):
        with contextlib.suppress(InvalidSpec):
            cases.append(validate_workflow(doc))
    cases += [mutated(rnd, doc) for doc in cases for _ in range(4)]
    built = 0
    for doc in cases:
        try:
            wire = convert.check_fields(doc)
        except InvalidSpec:
            continue
        reference = workflow_pb2.Workflow()
        try:
            json_format.ParseDict(wire, reference)
            expected: Any = reference.SerializeToString(deterministic=True)
        except Exception:  # ParseError, and the odd crash (a null in a list of google.protobuf.Value)
            expected = "error"
        fast = convert._build_fast(wire)
        if fast is not None:
            built += 1
            assert fast.SerializeToString(deterministic=True) == expected, doc
        message = convert.workflow_from_dict(doc) if expected != "error" else None
        if message is not None:
            assert same(convert.workflow_to_dict(message), _slow_to_dict(message), ordered=False), doc
            copied = workflow_pb2.Workflow(spec=message.spec)
            assert same(convert.spec_to_dict(message.spec), _slow_to_dict(copied)["spec"], ordered=False), doc
    assert built > len(cases) // 2


def test_a_spec_validate_workflow_returned_converts_the_same_without_a_second_check() -> None:
    checked = 0
    for doc in manifests():
        try:
            spec = validate_workflow(doc)["spec"]
        except InvalidSpec:
            continue
        checked += 1
        expected = convert.spec_from_dict(spec).SerializeToString(deterministic=True)
        assert convert.spec_from_checked_dict(spec).SerializeToString(deterministic=True) == expected
    assert checked > 50


def _slow_to_dict(message: workflow_pb2.Workflow) -> dict[str, Any]:
    out = json_format.MessageToDict(message)
    for template in out.get("spec", {}).get("templates", []):
        if "steps" in template:
            template["steps"] = [group.get("steps", []) for group in template["steps"]]
    return out


def test_statuses_with_timestamps_and_enums_convert_as_before() -> None:
    status = workflow_pb2.WorkflowStatus(phase=workflow_pb2.WORKFLOW_PHASE_RUNNING, progress="1/2")
    status.started_at.FromSeconds(12)
    status.nodes["a"].CopyFrom(workflow_pb2.NodeStatus(id="a", type=workflow_pb2.NODE_TYPE_POD))
    message = workflow_pb2.Workflow(status=status)
    assert same(convert.workflow_to_dict(message), json_format.MessageToDict(message))


def test_deep_copy_copies_like_deepcopy_keeping_shared_parts_shared() -> None:
    for doc in manifests():
        copied = deep_copy(doc)
        assert same(copied, copy.deepcopy(doc)) and copied is not doc
    shared = ["x"]
    tree: dict[str, Any] = {"a": shared, "b": {"c": shared}, "when": yaml.safe_load("d: 2001-12-14")["d"]}
    tree["self"] = tree
    copied = deep_copy(tree)
    assert copied["a"] is copied["b"]["c"] and copied["a"] is not shared and copied["self"] is copied
    assert copied["when"] == tree["when"]
