"""Argo's two expression languages, evaluated safely in pure Python.

* `evaluate_when(text)`: a step's or task's `when`, after `{{...}}` substitution,
  with Argo's govaluate meaning (bare words are strings: `heads == heads`).
* `evaluate(expression, env)`: the inside of a `{{=...}}` tag, in the expr
  language (expr-lang/expr) with Argo's functions (asInt, asFloat, toJson,
  jsonpath, sprig.*). `env_from_flat` builds env from Argo's dotted names.
* `render(value)`: the text that replaces a `{{=...}}` tag.

Nothing here uses eval/exec or Python attribute access, and every evaluation
is bounded in length, nesting, size and work (see limits.py). Errors are
`ExpressionError`s that quote the expression and give the column.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from treadle.expr.env import env_from_flat
from treadle.expr.errors import ExpressionError, Failure, error_at, quote_expression
from treadle.expr.interpreter import Dialect, Interpreter
from treadle.expr.limits import MAX_EXPRESSION_LENGTH
from treadle.expr.nodes import Node
from treadle.expr.parser import parse
from treadle.expr.values import describe, format_value
from treadle.expr.when import parse_when

_NAME_CHAR = re.compile(r"[\w$.]")

__all__ = ["ExpressionError", "env_from_flat", "evaluate", "evaluate_when", "render"]


def _check_length(text: str, kind: str) -> None:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise error_at(
            text, f"too long ({len(text)} characters; the limit is {MAX_EXPRESSION_LENGTH})", None, kind=kind
        )


@functools.lru_cache(maxsize=1024)
def _parsed(text: str, dialect: Dialect) -> Node:
    return parse_when(text) if dialect is Dialect.GOVALUATE else parse(text)


def _run(text: str, env: Mapping[str, Any], dialect: Dialect, kind: str) -> Any:
    _check_length(text, kind)
    try:
        tree = _parsed(text, dialect)
        return Interpreter(env, dialect).evaluate(tree)
    except Failure as failure:
        if failure.reason.startswith("unknown name") and failure.offset:
            failure.reason += _hyphen_hint(text, failure.offset)
        raise failure.to_error(text, kind=kind) from None
    except RecursionError:
        raise error_at(text, "nested too deeply to evaluate", None, kind=kind) from None


def _hyphen_hint(text: str, offset: int) -> str:
    """For `inputs.parameters.my-param`, which expr reads as a subtraction, suggest the indexed form."""
    if text[offset - 1] != "-":
        return ""
    start, end = offset - 1, offset
    while start > 0 and _NAME_CHAR.fullmatch(text[start - 1]):
        start -= 1
    while end < len(text) and (_NAME_CHAR.fullmatch(text[end]) or text[end] == "-"):
        end += 1
    path = text[start:end]
    segments = path.split(".")
    if not segments[0] or "-" in segments[0]:
        return ""
    indexed = segments[0] + "".join(f"['{s}']" if "-" in s else f".{s}" for s in segments[1:])
    return f" (names with a hyphen must be indexed: write {indexed} instead of {path})"


def evaluate(expression: str, env: Mapping[str, Any]) -> Any:
    """The value of an expr-language expression (the text of `{{=...}}` without the `=`).

    env maps top-level names to values (see env_from_flat). The result is None
    (nil), a bool, int, float, str, list or dict.
    """
    return _run(expression, env, Dialect.EXPR, "expression")


def evaluate_when(text: str) -> bool:
    """Whether a substituted `when` condition holds. An empty condition holds."""
    if not text.strip():
        return True
    result = _run(text, {}, Dialect.GOVALUATE, "when expression")
    if not isinstance(result, bool):
        raise ExpressionError(
            f"when expression {quote_expression(text)} evaluated to {describe(result)}, not a boolean",
            reason=f"evaluated to {describe(result)}, not a boolean",
            expression=text,
        )
    return result


def render(value: Any, *, expression: str | None = None) -> str:
    """The text a `{{=...}}` tag is replaced with.

    Strings as they are; numbers as Go's %v prints them (1.0 -> "1", 1e6 ->
    "1e+06"); booleans as true/false; lists and maps as JSON. A nil result is an
    error, as in Argo; pass the expression to have it quoted in the message.
    """
    if value is None:
        reason = "evaluated to nil (is a name or key missing?)"
        if expression is None:
            raise ExpressionError(f"expression {reason}", reason=reason)
        raise error_at(expression, reason, None)
    try:
        return format_value(value)
    except Failure as failure:
        if expression is None:
            raise ExpressionError(f"expression result: {failure.reason}", reason=failure.reason) from None
        raise failure.to_error(expression) from None
