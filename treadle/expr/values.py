"""The value model: type names, equality, size checks, and Go-compatible printing.

Expressions work on plain data: None (Go's nil), bool, int (Go int64), float
(Go float64), str, lists and maps. Argo prints results with Go's `%v` and
encodes JSON with `encoding/json`, so this module reproduces both formats:
`1.0` prints as `1`, `1e6` as `1e+06`, and JSON map keys are sorted.
"""

from __future__ import annotations

import decimal
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.limits import MAX_COLLECTION_ITEMS, MAX_STRING_LENGTH, MAX_VALUE_DEPTH

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DESCRIBE_LIMIT = 60


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_array(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def type_name(value: Any) -> str:
    """The expr-language name of a value's type, for messages and `type()`."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if is_array(value):
        return "array"
    if is_map(value):
        return "map"
    return type(value).__name__


def checked_int(value: int) -> int:
    """Reject results outside Go's int64 (Go would silently wrap around)."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise Failure("integer overflow: the result does not fit in 64 bits")
    return value


def check_size(value: Any) -> None:
    """Reject strings and collections above the evaluation limits."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise Failure(f"string result too long ({len(value)} characters; the limit is {MAX_STRING_LENGTH})")
    elif isinstance(value, list | dict) and len(value) > MAX_COLLECTION_ITEMS:
        raise Failure(f"result has too many items ({len(value)}; the limit is {MAX_COLLECTION_ITEMS})")


def check_string_length(length: int) -> None:
    """Reject a string before building it, when its length is known in advance."""
    if length > MAX_STRING_LENGTH:
        raise Failure(f"string result too long ({length} characters; the limit is {MAX_STRING_LENGTH})")


def values_equal(left: Any, right: Any, depth: int = 0) -> bool:
    """Equality as expr's `==`: numbers compare by value across int and float, other types never match."""
    if depth > MAX_VALUE_DEPTH:
        raise Failure("value is nested too deeply to compare")
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return left is right or (type(left) is type(right) and left == right)
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if is_array(left) and is_array(right):
        return len(left) == len(right) and all(values_equal(a, b, depth + 1) for a, b in zip(left, right, strict=True))
    if is_map(left) and is_map(right):
        return left.keys() == right.keys() and all(values_equal(left[k], right[k], depth + 1) for k in left)
    return False


# ---------------------------------------------------------------- numbers in Go's formats


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip abs(value), and the decimal point's position.

    value == 0.<digits> * 10**point, like the `decimalSlice` Go's strconv works with.
    """
    parts = decimal.Decimal(repr(abs(value))).as_tuple()
    digits = "".join(str(d) for d in parts.digits)
    exponent = int(parts.exponent)
    point = len(digits) + exponent
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", point


def _exponent_form(sign: str, digits: str, point: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exponent = point - 1
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _fixed_form(sign: str, digits: str, point: int) -> str:
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_float(value: float) -> str:
    """A float as Go's `%v` prints it: shortest digits, exponent form below 1e-4 or from 1e+06."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest_digits(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        return _exponent_form(sign, digits, point)
    return _fixed_form(sign, digits, point)


def _json_float(value: float) -> str:
    """A float as Go's encoding/json writes it: fixed form between 1e-6 and 1e21."""
    if math.isnan(value) or math.isinf(value):
        raise Failure(f"cannot encode {format_float(value)} as JSON")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(value)
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        text = _exponent_form(sign, digits, point)
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0') or '0'}"
    return _fixed_form(sign, digits, point)


# ---------------------------------------------------------------- JSON and printing


def _json_string(text: str) -> str:
    # encoding/json escapes <, > and & for safe embedding in HTML, and the JS line separators.
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escape)
    return encoded


def to_json(value: Any) -> str:
    """Compact JSON as Go's json.Marshal writes it (sorted map keys, integral floats without `.0`)."""
    parts: list[str] = []
    budget = [MAX_STRING_LENGTH]

    def emit(text: str) -> None:
        budget[0] -= len(text)
        if budget[0] < 0:
            raise Failure(f"JSON result too long (the limit is {MAX_STRING_LENGTH} characters)")
        parts.append(text)

    def encode(item: Any, depth: int) -> None:
        if depth > MAX_VALUE_DEPTH:
            raise Failure("value is nested too deeply to encode as JSON")
        if item is None:
            emit("null")
        elif isinstance(item, bool):
            emit("true" if item else "false")
        elif isinstance(item, int):
            emit(str(item))
        elif isinstance(item, float):
            emit(_json_float(item))
        elif isinstance(item, str):
            emit(_json_string(item))
        elif is_map(item):
            emit("{")
            for index, key in enumerate(sorted(item, key=str)):
                emit(("," if index else "") + _json_string(str(key)) + ":")
                encode(item[key], depth + 1)
            emit("}")
        elif is_array(item):
            emit("[")
            for index, element in enumerate(item):
                if index:
                    emit(",")
                encode(element, depth + 1)
            emit("]")
        else:
            raise Failure(f"cannot encode a value of type {type_name(item)} as JSON")

    encode(value, 0)
    return "".join(parts)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def from_json(text: str) -> Any:
    """Parse JSON the way Go decodes into interface{}: every number becomes a float."""
    try:
        return json.loads(text, parse_int=float, parse_constant=_reject_constant)
    except RecursionError:
        raise Failure("JSON is nested too deeply") from None
    except ValueError as error:
        raise Failure(f"invalid JSON: {error}") from None


def format_value(value: Any) -> str:
    """A value as text: Go's `%v` for scalars (nil prints as `<nil>`), JSON for lists and maps."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    return to_json(value)


def describe(value: Any) -> str:
    """A short rendering of a value for error messages: strings quoted, long text cut."""
    if isinstance(value, str):
        text = repr(value if len(value) <= DESCRIBE_LIMIT else value[:DESCRIBE_LIMIT] + "…")
    elif value is None:
        text = "nil"
    else:
        try:
            text = format_value(value)
        except Failure:
            text = f"<{type_name(value)}>"
        if len(text) > DESCRIBE_LIMIT:
            text = text[:DESCRIBE_LIMIT] + "…"
    return text


def is_empty(value: Any) -> bool:
    """Sprig's notion of empty: nil, false, 0, "", and empty lists and maps."""
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if is_number(value):
        return bool(value == 0)
    if isinstance(value, str) or is_array(value) or is_map(value):
        return len(value) == 0
    return False
