"""A small JSONPath, for Argo's `jsonpath(jsonString, path)` expression function.

Supported: `$`, `.key`, `['key']` / `["key"]`, `[n]` (negative counts from the
end), `[*]` and `.*`, unions `[0,2]` / `['a','b']`, slices `[start:end:step]`,
recursive descent `..key` / `..[0]` / `..*`, and simple filters
`[?(@.key)]`, `[?(@.key == 'x')]` with == != < <= > >= against a number,
string, true, false or null.

A definite path (only keys and indexes) returns the one value and fails when
it is missing, like the library Argo uses; any other path returns the list of
matches, possibly empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.values import describe, is_array, is_map, is_number, values_equal

NAME = re.compile(r"[^.\[\]\s]+")
INTEGER = re.compile(r"\s*-?\d+\s*\Z")
SLICE = re.compile(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?\Z")
QUOTED = re.compile(r"\s*(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")\s*")
FILTER = re.compile(r"\?\(\s*@((?:\.[A-Za-z0-9_$-]+|\['[^']*'\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)\Z", re.DOTALL)
FILTER_KEY = re.compile(r"\.([A-Za-z0-9_$-]+)|\['([^']*)'\]")

Selector = Callable[[Any, bool], list[Any]]


@dataclass(frozen=True)
class Step:
    select: Selector  # (node, strict) -> matches; strict raises when a key or index is missing
    definite: bool


def _child(name: str) -> Selector:
    def select(node: Any, strict: bool) -> list[Any]:
        if is_map(node) and name in node:
            return [node[name]]
        if strict:
            raise Failure(f"jsonpath: key {name!r} not found")
        return []

    return select


def _index(position: int) -> Selector:
    def select(node: Any, strict: bool) -> list[Any]:
        if is_array(node) and -len(node) <= position < len(node):
            return [node[position]]
        if strict:
            raise Failure(f"jsonpath: index {position} out of range" if is_array(node) else "jsonpath: not an array")
        return []

    return select


def _wildcard(node: Any, strict: bool) -> list[Any]:
    if is_map(node):
        return list(node.values())
    return list(node) if is_array(node) else []


def _slice(start: int | None, end: int | None, step: int | None) -> Selector:
    if step == 0:
        raise Failure("jsonpath: slice step cannot be zero")

    def select(node: Any, strict: bool) -> list[Any]:
        return list(node[start:end:step]) if is_array(node) else []

    return select


def _union(selectors: list[Selector]) -> Selector:
    def select(node: Any, strict: bool) -> list[Any]:
        return [match for selector in selectors for match in selector(node, False)]

    return select


def _descendants(node: Any) -> list[Any]:
    found, pending = [], [node]
    while pending:
        current = pending.pop()
        found.append(current)
        children = list(current.values()) if is_map(current) else list(current) if is_array(current) else []
        pending.extend(reversed(children))
    return found


def _recursive(inner: Selector) -> Selector:
    def select(node: Any, strict: bool) -> list[Any]:
        return [match for each in _descendants(node) for match in inner(each, False)]

    return select


def _literal(text: str) -> Any:
    text = text.strip()
    quoted = QUOTED.fullmatch(text)
    if quoted:
        return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    constants = {"true": True, "false": False, "null": None}
    if text in constants:
        return constants[text]
    try:
        return float(text)
    except ValueError:
        raise Failure(f"jsonpath: cannot read the filter value {text!r}") from None


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator in ("==", "!="):
        return values_equal(left, right) == (operator == "==")
    if not ((is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))):
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator])


def _filter(text: str) -> Selector:
    match = FILTER.match(text)
    if not match:
        raise Failure(f"jsonpath: unsupported filter {text!r}")
    keys = [key_a if key_a else key_b for key_a, key_b in FILTER_KEY.findall(match.group(1))]
    operator, expected = match.group(2), _literal(match.group(3)) if match.group(2) else None

    def test(item: Any) -> bool:
        for key in keys:
            if not (is_map(item) and key in item):
                return False
            item = item[key]
        return True if operator is None else _compare(operator, item, expected)

    def select(node: Any, strict: bool) -> list[Any]:
        return [item for item in _wildcard(node, False) if test(item)]

    return select


def _bracket(content: str) -> Step:
    content = content.strip()
    if content == "*":
        return Step(_wildcard, False)
    if content.startswith("?"):
        return Step(_filter(content), False)
    slice_match = SLICE.match(content)
    if slice_match and ":" in content:
        bounds = [int(part) if part else None for part in slice_match.groups()]
        return Step(_slice(bounds[0], bounds[1], bounds[2]), False)
    selectors: list[Selector] = []
    for part in _split_union(content):
        quoted = QUOTED.fullmatch(part)
        if quoted:
            raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
            selectors.append(_child(re.sub(r"\\(.)", r"\1", raw)))
        elif INTEGER.match(part):
            selectors.append(_index(int(part)))
        else:
            raise Failure(f"jsonpath: cannot read the selector [{content}]")
    return Step(selectors[0], True) if len(selectors) == 1 else Step(_union(selectors), False)


def _split_union(content: str) -> list[str]:
    """Split `'a', 'b,c', 1` at the commas outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in content:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _closing_bracket(path: str, start: int) -> int:
    quote, depth = "", 0
    for index in range(start, len(path)):
        char = path[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "]":
            if depth == 1:
                return index
            depth -= 1
    raise Failure(f"jsonpath: unclosed '[' in {path!r}")


def parse(path: str) -> list[Step]:
    text = path.strip()
    if not text.startswith("$"):
        raise Failure(f"jsonpath: path {path!r} must start with '$'")
    steps: list[Step] = []
    index = 1
    while index < len(text):
        recursive = text.startswith("..", index)
        if text[index] == ".":
            index += 2 if recursive else 1
            if text[index : index + 1] == "*":
                step, index = Step(_wildcard, False), index + 1
            elif text[index : index + 1] == "[" and recursive:
                close = _closing_bracket(text, index)
                step, index = _bracket(text[index + 1 : close]), close + 1
            else:
                name = NAME.match(text, index)
                if not name:
                    raise Failure(f"jsonpath: expected a key at position {index} of {path!r}")
                step, index = Step(_child(name.group(0)), True), name.end()
        elif text[index] == "[":
            close = _closing_bracket(text, index)
            step, index = _bracket(text[index + 1 : close]), close + 1
        else:
            raise Failure(f"jsonpath: unexpected {text[index]!r} at position {index} of {path!r}")
        steps.append(Step(_recursive(step.select), False) if recursive else step)
    return steps


def query(document: Any, path: str) -> Any:
    """The value at a definite path, or the list of matches of any other path."""
    steps = parse(path)
    definite = all(step.definite for step in steps)
    nodes = [document]
    for step in steps:
        nodes = [match for node in nodes for match in step.select(node, definite)]
    if definite:
        if not nodes:
            raise Failure(f"jsonpath: nothing at {path!r} in {describe(document)}")
        return nodes[0]
    return nodes
