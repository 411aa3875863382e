"""The syntax tree both dialects parse into and the interpreter walks.

Nodes are immutable, so a parsed expression can be cached and shared. Every
node records the offset (0-based) of the token that best locates it in the
source text: the operator of a binary expression, the name of a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.limits import MAX_TREE_HEIGHT


@dataclass(frozen=True, slots=True)
class Node:
    offset: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A number, string, boolean or nil written in the expression."""

    value: Any


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    """A name looked up in the environment (or a `let` binding)."""

    name: str


@dataclass(frozen=True, slots=True)
class Pointer(Node):
    """Inside a predicate: `#` (name ""), `#index` or `#acc`."""

    name: str


@dataclass(frozen=True, slots=True)
class Member(Node):
    """`target.key` or `target[key]`; `optional` for `?.`, which yields nil on a nil target."""

    target: Node
    key: Node
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Slice(Node):
    """`target[start:end]`, either bound may be missing."""

    target: Node
    start: Node | None
    end: Node | None


@dataclass(frozen=True, slots=True)
class Predicate(Node):
    """The closure argument of filter/map/all/...: `{# > 1}` or a bare expression."""

    body: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A call of a built-in function; `name` is "trim" or "sprig.trim"."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    operator: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    """`condition ? when_true : when_false`."""

    condition: Node
    when_true: Node
    when_false: Node


@dataclass(frozen=True, slots=True)
class ArrayLiteral(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLiteral(Node):
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Let(Node):
    """`let name = value; body`."""

    name: str
    value: Node
    body: Node


_FIELD_NAMES: dict[type[Node], tuple[str, ...]] = {}


def _field_names(node_type: type[Node]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(node_type)
    if names is None:
        names = _FIELD_NAMES[node_type] = tuple(field.name for field in fields(node_type))
    return names


def children(node: Node) -> Iterator[Node]:
    """The direct sub-nodes of a node."""
    for name in _field_names(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield item
                elif isinstance(item, tuple):
                    yield from (part for part in item if isinstance(part, Node))


def check_tree_height(root: Node) -> None:
    """Reject trees too tall to walk recursively (iterative, so it cannot overflow itself)."""
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, height = stack.pop()
        if height > MAX_TREE_HEIGHT:
            raise Failure(f"expression is nested too deeply (more than {MAX_TREE_HEIGHT} levels)", node.offset)
        stack.extend((child, height + 1) for child in children(node))
