"""Kubernetes label selectors: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.

Every requirement must hold. As in Kubernetes, `!=` and `notin` also match
workflows that do not have the label at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from treadle.errors import FieldViolation, InvalidSpec

FIELD = "label_selector"
# Keys and values are free-form labels, so only the selector's own punctuation is excluded.
_KEY = r"[^\s=!,()]+"
_VALUE = r"[^\s=!,()]*"
_EXISTS = re.compile(rf"(?P<key>{_KEY})")
_NOT_EXISTS = re.compile(rf"!\s*(?P<key>{_KEY})")
_COMPARE = re.compile(rf"(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})")
_SET = re.compile(rf"(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")


class Operator(Enum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator is Operator.EXISTS:
            return value is not None
        if self.operator is Operator.NOT_EXISTS:
            return value is None
        if self.operator in (Operator.EQUALS, Operator.IN):
            return value is not None and value in self.values
        return value is None or value not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    @property
    def selects_everything(self) -> bool:
        return not self.requirements


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a selector; raises InvalidSpec naming label_selector and the requirement at fault."""
    if not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_parse_requirement(part) for part in _split_requirements(text)))


def _split_requirements(text: str) -> list[str]:
    """Split at the commas that are not inside `in (...)` value lists."""
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _invalid(text, "unbalanced ')'")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0:
        raise _invalid(text, "unbalanced '('")
    parts.append(text[start:])
    return parts


def _parse_requirement(part: str) -> Requirement:
    text = part.strip()
    if not text:
        raise _invalid(part, "empty requirement (a stray comma?)")
    if match := _SET.fullmatch(text):
        values = [value.strip() for value in match["values"].split(",")]
        if not all(values) or any(re.search(r"[\s=!]", value) for value in values):
            raise _invalid(text, f"{match['op']} needs a list of values, like `{match['key']} {match['op']} (a,b)`")
        operator = Operator.IN if match["op"] == "in" else Operator.NOT_IN
        return Requirement(match["key"], operator, frozenset(values))
    if match := _COMPARE.fullmatch(text):
        operator = Operator.NOT_EQUALS if match["op"] == "!=" else Operator.EQUALS
        return Requirement(match["key"], operator, frozenset({match["value"]}))
    if match := _NOT_EXISTS.fullmatch(text):
        return Requirement(match["key"], Operator.NOT_EXISTS)
    if match := _EXISTS.fullmatch(text):
        return Requirement(match["key"], Operator.EXISTS)
    raise _invalid(text, "expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key")


def _invalid(requirement: str, problem: str) -> InvalidSpec:
    return InvalidSpec(FieldViolation(FIELD, f"{problem}: {requirement.strip()!r}"))
