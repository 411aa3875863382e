"""Argument conversions and string helpers shared by the built-ins and sprig.

Two families of numeric conversion: expr's strict `int`/`float` and sprig's forgiving casts.

expr's `int("5")` parses like Go's strconv.Atoi and fails on "5.0" or "x".
Sprig's `int` goes through spf13/cast: "5.0" is 5, "0x10" is 16, "010" is 8
(octal), and anything unparseable is 0 without an error, as Argo's docs warn.
"""

from __future__ import annotations

import math
import re
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.values import (
    INT64_MAX,
    INT64_MIN,
    check_string_length,
    checked_int,
    describe,
    is_array,
    is_int,
    type_name,
)

DECIMAL_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z",
    re.IGNORECASE,
)
# strconv.ParseInt(s, 0, 64): a base prefix, or a leading 0 for octal.
GO_INTEGER_ANY_BASE = re.compile(
    r"([+-]?)(?:0[xX](?P<hex>[0-9a-fA-F_]+)|0[oO](?P<oct>[0-7_]+)|0[bB](?P<bin>[01_]+)"
    r"|0(?P<legacy_oct>[0-7_]+)|(?P<dec>[0-9][0-9_]*))\Z"
)


def to_int(value: Any) -> int:
    """expr's `int()` and Argo's `asInt()`."""
    if is_int(value):
        return checked_int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Failure(f"cannot convert {describe(value)} to int")
        return checked_int(int(value))
    if isinstance(value, str) and DECIMAL_INTEGER.match(value):
        number = parse_decimal_int(value)
        if number is None:
            raise Failure(f"cannot convert {describe(value)} to int: value out of range")
        return number
    raise Failure(f"cannot convert {describe(value)} ({type_name(value)}) to int")


def to_float(value: Any) -> float:
    """expr's `float()` and Argo's `asFloat()`."""
    if is_int(value) or isinstance(value, float):
        return float(value)
    if isinstance(value, str) and GO_FLOAT.match(value):
        number = float(value)
        if math.isinf(number) and "inf" not in value.lower():
            raise Failure(f"cannot convert {describe(value)} to float: value out of range")
        return number
    raise Failure(f"cannot convert {describe(value)} ({type_name(value)}) to float")


def _trim_zero_decimal(text: str) -> str:
    """cast's trimZeroDecimal: "5.00" -> "5", anything else unchanged."""
    whole, dot, fraction = text.partition(".")
    return whole if dot and fraction and set(fraction) == {"0"} else text


def _parse_go_integer(text: str) -> int | None:
    match = GO_INTEGER_ANY_BASE.match(text)
    if not match:
        return None
    for group, base in (("hex", 16), ("oct", 8), ("bin", 2), ("legacy_oct", 8), ("dec", 10)):
        digits = match.group(group)
        if digits is not None:
            if digits.startswith("_") or digits.endswith("_") or "__" in digits:
                return None
            number = int(digits.replace("_", ""), base)
            return -number if match.group(1) == "-" else number
    return None


def cast_to_int(value: Any) -> int:
    """Sprig's `int`/`int64`/`add`... argument conversion: never fails, 0 when it cannot convert."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if is_int(value):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and INT64_MIN <= value <= INT64_MAX else 0
    if isinstance(value, str):
        number = _parse_go_integer(_trim_zero_decimal(value))
        return number if number is not None and INT64_MIN <= number <= INT64_MAX else 0
    return 0


def cast_to_float(value: Any) -> float:
    """Sprig's `float64`: never fails, 0 when it cannot convert."""
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str) and GO_FLOAT.match(value):
        return float(value)
    return 0.0


def require_string(function: str, position: int, value: Any) -> str:
    if not isinstance(value, str):
        raise Failure(f"{function}: argument {position} must be a string, not {type_name(value)} {describe(value)}")
    return value


def require_int(function: str, position: int, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not is_int(value):
        raise Failure(f"{function}: argument {position} must be an integer, not {type_name(value)} {describe(value)}")
    return int(value)


def require_array(function: str, position: int, value: Any) -> list[Any]:
    if not is_array(value):
        raise Failure(f"{function}: argument {position} must be an array, not {type_name(value)} {describe(value)}")
    return list(value)


def go_split(text: str, separator: str, limit: int = -1) -> list[str]:
    """strings.SplitN: an empty separator splits into characters; limit 0 gives no parts."""
    if limit == 0:
        return []
    if separator == "":
        characters = list(text)
        if 0 < limit < len(characters):
            characters[limit - 1 :] = ["".join(characters[limit - 1 :])]
        return characters
    return text.split(separator, limit - 1 if limit > 0 else -1)


def replace_all(function: str, text: Any, old: Any, new: Any) -> str:
    """strings.ReplaceAll, with the result's size checked before it is built."""
    text, old, new = (require_string(function, i, v) for i, v in enumerate((text, old, new), start=1))
    occurrences = len(text) + 1 if old == "" else text.count(old)
    check_string_length(len(text) + occurrences * (len(new) - len(old)))
    return str(text.replace(old, new))


def repeat(function: str, text: str, count: int) -> str:
    """strings.Repeat, refusing a result above the size limit before building it."""
    if count < 0:
        raise Failure(f"{function}: negative repeat count {count}")
    check_string_length(len(text) * count)
    return text * count


def parse_decimal_int(text: str) -> int | None:
    """strconv.Atoi: an optional sign and decimal digits, within int64; None otherwise."""
    if not DECIMAL_INTEGER.match(text):
        return None
    number = int(text)
    return number if INT64_MIN <= number <= INT64_MAX else None
