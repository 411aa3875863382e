"""The operators, with expr's typing rules and a govaluate variant where Argo's `when` differs.

expr is strict: `+` joins two strings or adds two numbers, never a string and
a number; `%` takes integers; `/` always gives a float. govaluate (used for
`when`) has only float numbers, concatenates a string with anything under `+`,
and takes the float remainder under `%`. Errors read like Go's:

    invalid operation: 'a' - 1 (mismatched types string and int)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from treadle.expr import patterns
from treadle.expr.errors import Failure
from treadle.expr.limits import MAX_COLLECTION_ITEMS
from treadle.expr.values import (
    check_string_length,
    checked_int,
    describe,
    format_value,
    is_array,
    is_int,
    is_map,
    is_number,
    type_name,
    values_equal,
)

BinaryOperation = Callable[[Any, Any], Any]


def mismatch(operator: str, left: Any, right: Any) -> Failure:
    return Failure(
        f"invalid operation: {describe(left)} {operator} {describe(right)}"
        f" (mismatched types {type_name(left)} and {type_name(right)})"
    )


def _arithmetic(operator: str, left: Any, right: Any, apply: BinaryOperation) -> Any:
    """Apply a numeric operator: int with int stays int (checked for overflow), otherwise float."""
    if not (is_number(left) and is_number(right)):
        raise mismatch(operator, left, right)
    if is_int(left) and is_int(right):
        return checked_int(apply(left, right))
    result = float(apply(left, right))
    if math.isinf(result) or math.isnan(result):
        raise Failure(f"invalid operation: {describe(left)} {operator} {describe(right)} is out of range")
    return result


def add(left: Any, right: Any, *, concatenate_any: bool = False) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        check_string_length(len(left) + len(right))
        return left + right
    if concatenate_any and (isinstance(left, str) or isinstance(right, str)):
        if is_array(left) or is_map(left) or is_array(right) or is_map(right):
            raise mismatch("+", left, right)
        left_text, right_text = format_value(left), format_value(right)
        check_string_length(len(left_text) + len(right_text))
        return left_text + right_text
    if is_array(left) and is_array(right):
        if len(left) + len(right) > MAX_COLLECTION_ITEMS:
            raise Failure(f"result has too many items (the limit is {MAX_COLLECTION_ITEMS})")
        return [*left, *right]
    return _arithmetic("+", left, right, lambda a, b: a + b)


def subtract(left: Any, right: Any) -> Any:
    return _arithmetic("-", left, right, lambda a, b: a - b)


def multiply(left: Any, right: Any) -> Any:
    return _arithmetic("*", left, right, lambda a, b: a * b)


def divide(left: Any, right: Any) -> float:
    """expr's `/` always divides as floats."""
    if not (is_number(left) and is_number(right)):
        raise mismatch("/", left, right)
    if right == 0:
        raise Failure(f"invalid operation: {describe(left)} / {describe(right)}: division by zero")
    result = float(left) / float(right)
    if math.isinf(result):
        raise Failure(f"invalid operation: {describe(left)} / {describe(right)} is out of range")
    return result


def modulo(left: Any, right: Any, *, floats_allowed: bool = False) -> Any:
    """`%` with Go's sign rule (the remainder takes the dividend's sign)."""
    if floats_allowed and is_number(left) and is_number(right):
        if right == 0:
            raise Failure(f"invalid operation: {describe(left)} % {describe(right)}: division by zero")
        return math.fmod(float(left), float(right))
    if not (is_int(left) and is_int(right)):
        raise mismatch("%", left, right)
    if right == 0:
        raise Failure(f"invalid operation: {describe(left)} % {describe(right)}: integer divide by zero")
    remainder = abs(left) % abs(right)
    return -remainder if left < 0 else remainder


def power(left: Any, right: Any) -> float:
    """`**` and `^` give a float, like Go's math.Pow; overflow is an error, not +Inf."""
    if not (is_number(left) and is_number(right)):
        raise mismatch("**", left, right)
    try:
        result = math.pow(float(left), float(right))
    except OverflowError:
        raise Failure(f"invalid operation: {describe(left)} ** {describe(right)} is out of range") from None
    except ValueError:
        raise Failure(f"invalid operation: {describe(left)} ** {describe(right)} is not a real number") from None
    return result


def less(operator: str, left: Any, right: Any) -> bool:
    """`<`, `>`, `<=`, `>=` on two numbers or two strings."""
    comparable = (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    if not comparable:
        raise mismatch(operator, left, right)
    match operator:
        case "<":
            return bool(left < right)
        case ">":
            return bool(left > right)
        case "<=":
            return bool(left <= right)
        case _:
            return bool(left >= right)


def membership(needle: Any, haystack: Any) -> bool:
    """`in`: an element of an array, or a key of a map; nothing is in nil."""
    if haystack is None:
        return False
    if is_array(haystack):
        return any(values_equal(needle, item) for item in haystack)
    if is_map(haystack):
        try:
            return needle in haystack
        except TypeError:  # an unhashable needle (a list or map) is never a key
            return False
    raise Failure(f"operator in not defined on {type_name(haystack)}")


def _strings(operator: str, left: Any, right: Any) -> tuple[str, str]:
    if not (isinstance(left, str) and isinstance(right, str)):
        raise mismatch(operator, left, right)
    return left, right


def contains(left: Any, right: Any) -> bool:
    text, part = _strings("contains", left, right)
    return part in text


def starts_with(left: Any, right: Any) -> bool:
    text, prefix = _strings("startsWith", left, right)
    return text.startswith(prefix)


def ends_with(left: Any, right: Any) -> bool:
    text, suffix = _strings("endsWith", left, right)
    return text.endswith(suffix)


def matches(left: Any, right: Any, operator: str = "matches") -> bool:
    """Unanchored regular-expression search, like Go's regexp.MatchString."""
    text, pattern = _strings(operator, left, right)
    return patterns.compile_pattern(pattern).search(text) is not None


def make_range(start: Any, end: Any) -> list[int]:
    """`a..b`: the integers from a to b inclusive."""
    if not (is_int(start) and is_int(end)):
        raise mismatch("..", start, end)
    if end - start + 1 > MAX_COLLECTION_ITEMS:
        raise Failure(f"range {start}..{end} has too many items (the limit is {MAX_COLLECTION_ITEMS})")
    return list(range(start, end + 1))


def negate(operand: Any) -> Any:
    if is_int(operand):
        return checked_int(-operand)
    if is_number(operand):
        return -operand
    raise Failure(f"invalid operation: -{describe(operand)} (type {type_name(operand)} is not a number)")


def plus(operand: Any) -> Any:
    if is_number(operand):
        return operand
    raise Failure(f"invalid operation: +{describe(operand)} (type {type_name(operand)} is not a number)")


def require_bool(operator: str, operand: Any) -> bool:
    if not isinstance(operand, bool):
        raise Failure(f"invalid operation: {operator} needs a bool, not {type_name(operand)} {describe(operand)}")
    return operand


EXPR_BINARY: dict[str, BinaryOperation] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "%": modulo,
    "**": power,
    "^": power,
    "==": values_equal,
    "!=": lambda left, right: not values_equal(left, right),
    "<": lambda left, right: less("<", left, right),
    ">": lambda left, right: less(">", left, right),
    "<=": lambda left, right: less("<=", left, right),
    ">=": lambda left, right: less(">=", left, right),
    "in": membership,
    "contains": contains,
    "startsWith": starts_with,
    "endsWith": ends_with,
    "matches": matches,
    "..": make_range,
}

# govaluate, as Argo runs it for `when`: regex operators, and looser `+` and `%`.
GOVALUATE_BINARY: dict[str, BinaryOperation] = {
    **EXPR_BINARY,
    "+": lambda left, right: add(left, right, concatenate_any=True),
    "%": lambda left, right: modulo(left, right, floats_allowed=True),
    "=~": lambda left, right: matches(left, right, "=~"),
    "!~": lambda left, right: not matches(left, right, "!~"),
}
