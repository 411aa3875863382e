"""`{{...}}` tags: finding and substituting them.

Argo's templating replaces `{{name}}` (whitespace inside the braces is
ignored) with a string. Tags whose name starts with `=` are expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from treadle.errors import TreadleError

TAG = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)

Lookup = Callable[[str], "str | None"]


class UnresolvedReference(TreadleError):
    """A `{{...}}` tag names something that has no value in its scope."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"undefined reference {{{{{ref}}}}}")


def references(text: str) -> list[str]:
    """The names inside every tag of text, in order."""
    return [m.group(1) for m in TAG.finditer(text)]


def substitute(text: str, lookup: Lookup) -> str:
    """Replace every tag; raise UnresolvedReference for the first unknown one."""
    if "{{" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        value = lookup(m.group(1))
        if value is None:
            raise UnresolvedReference(m.group(1))
        return value

    return TAG.sub(repl, text)


def substitute_tree(node: Any, lookup: Lookup, *, skip: frozenset[str] = frozenset()) -> Any:
    """Substitute in every string of a dict/list tree, leaving keys in skip untouched."""
    if isinstance(node, str):
        return substitute(node, lookup)
    if isinstance(node, list):
        return [substitute_tree(i, lookup, skip=skip) for i in node]
    if isinstance(node, dict):
        return {k: (v if k in skip else substitute_tree(v, lookup, skip=skip)) for k, v in node.items()}
    return node


def strings_with_paths(node: Any, path: str, *, skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """Every string in a tree with its dotted path, for error messages."""
    out: list[tuple[str, str]] = []
    if isinstance(node, str):
        out.append((path, node))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out.extend(strings_with_paths(item, f"{path}[{i}]", skip=skip))
    elif isinstance(node, dict):
        for k, v in node.items():
            if k not in skip:
                out.extend(strings_with_paths(v, f"{path}.{k}" if path else k, skip=skip))
    return out
