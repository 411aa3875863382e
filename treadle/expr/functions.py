"""Built-in functions: expr's own, the ones Argo adds (asInt, asFloat, toJson, jsonpath), and sprig.

Functions that take a predicate (`filter(xs, {# > 1})`) need the interpreter to
run the predicate; they are listed in PREDICATE_FUNCTIONS and implemented in
closures.py. Every other built-in is a plain function of evaluated arguments.
Strings are measured in characters (code points) where Go would count bytes;
the two agree on ASCII.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from treadle.expr import jsonpath
from treadle.expr.conversions import (
    go_split,
    repeat,
    replace_all,
    require_array,
    require_int,
    require_string,
    to_float,
    to_int,
)
from treadle.expr.errors import Failure
from treadle.expr.registry import Builtin, Registry
from treadle.expr.sprig import SPRIG
from treadle.expr.values import (
    check_string_length,
    describe,
    format_value,
    from_json,
    is_array,
    is_int,
    is_map,
    is_number,
    to_json,
    type_name,
)

# name -> (fewest, most) arguments; the second argument is always the predicate.
PREDICATE_FUNCTIONS: dict[str, tuple[int, int]] = {
    "all": (2, 2),
    "any": (2, 2),
    "none": (2, 2),
    "one": (2, 2),
    "filter": (2, 2),
    "map": (2, 2),
    "count": (1, 2),
    "sum": (1, 2),
    "find": (2, 2),
    "findIndex": (2, 2),
    "findLast": (2, 2),
    "findLastIndex": (2, 2),
    "groupBy": (2, 2),
    "sortBy": (2, 3),
    "reduce": (2, 3),
}

core = Registry()


# ---------------------------------------------------------------- conversions


@core.function("int", 1)
def _int(value: Any) -> int:
    return to_int(value)


@core.function("float", 1)
def _float(value: Any) -> float:
    return to_float(value)


@core.function("string", 1)
def _string(value: Any) -> str:
    return format_value(value)


@core.function("toJSON", 1)
def _to_json(value: Any) -> str:
    return to_json(value)


@core.function("fromJSON", 1)
def _from_json(text: Any) -> Any:
    return from_json(require_string("fromJSON", 1, text))


@core.function("toBase64", 1)
def _to_base64(text: Any) -> str:
    return base64.b64encode(require_string("toBase64", 1, text).encode()).decode()


@core.function("fromBase64", 1)
def _from_base64(text: Any) -> str:
    try:
        return base64.b64decode(require_string("fromBase64", 1, text), validate=True).decode(errors="replace")
    except binascii.Error as error:
        raise Failure(f"fromBase64: invalid base64 {describe(text)}: {error}") from None


@core.function("type", 1)
def _type(value: Any) -> str:
    return type_name(value)


# Argo's additions (workflow/util/expr env): asInt/asFloat are expr's int/float under older names.
core.alias("asInt", "int")
core.alias("asFloat", "float")
core.alias("toJson", "toJSON")


@core.function("jsonpath", 2)
def _jsonpath(document: Any, path: Any) -> Any:
    return jsonpath.query(from_json(require_string("jsonpath", 1, document)), require_string("jsonpath", 2, path))


# ---------------------------------------------------------------- strings


@core.function("len", 1)
def _len(value: Any) -> int:
    if isinstance(value, str) or is_array(value) or is_map(value):
        return len(value)
    raise Failure(f"invalid argument for len (type {type_name(value)})")


@core.function("upper", 1)
def _upper(text: Any) -> str:
    return require_string("upper", 1, text).upper()


@core.function("lower", 1)
def _lower(text: Any) -> str:
    return require_string("lower", 1, text).lower()


@core.function("trim", (1, 2))
def _trim(text: Any, characters: Any = None) -> str:
    if characters is None:
        return require_string("trim", 1, text).strip()
    return require_string("trim", 1, text).strip(require_string("trim", 2, characters))


@core.function("trimPrefix", 2)
def _trim_prefix(text: Any, prefix: Any) -> str:
    return require_string("trimPrefix", 1, text).removeprefix(require_string("trimPrefix", 2, prefix))


@core.function("trimSuffix", 2)
def _trim_suffix(text: Any, suffix: Any) -> str:
    return require_string("trimSuffix", 1, text).removesuffix(require_string("trimSuffix", 2, suffix))


@core.function("hasPrefix", 2)
def _has_prefix(text: Any, prefix: Any) -> bool:
    return require_string("hasPrefix", 1, text).startswith(require_string("hasPrefix", 2, prefix))


@core.function("hasSuffix", 2)
def _has_suffix(text: Any, suffix: Any) -> bool:
    return require_string("hasSuffix", 1, text).endswith(require_string("hasSuffix", 2, suffix))


@core.function("split", (2, 3))
def _split(text: Any, separator: Any, limit: Any = -1) -> list[str]:
    return go_split(
        require_string("split", 1, text), require_string("split", 2, separator), require_int("split", 3, limit)
    )


@core.function("replace", 3)
def _replace(text: Any, old: Any, new: Any) -> str:
    return replace_all("replace", text, old, new)


@core.function("repeat", 2)
def _repeat(text: Any, count: Any) -> str:
    return repeat("repeat", require_string("repeat", 1, text), require_int("repeat", 2, count))


@core.function("indexOf", 2)
def _index_of(text: Any, part: Any) -> int:
    return require_string("indexOf", 1, text).find(require_string("indexOf", 2, part))


@core.function("lastIndexOf", 2)
def _last_index_of(text: Any, part: Any) -> int:
    return require_string("lastIndexOf", 1, text).rfind(require_string("lastIndexOf", 2, part))


@core.function("join", (1, 2))
def _join(items: Any, separator: Any = "") -> str:
    return join_strings("join", require_array("join", 1, items), require_string("join", 2, separator))


def join_strings(function: str, items: list[Any], separator: str) -> str:
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise Failure(f"{function}: element {index} is {type_name(item)} {describe(item)}, not a string")
    check_string_length(sum(len(item) for item in items) + len(separator) * max(len(items) - 1, 0))
    return separator.join(items)


# ---------------------------------------------------------------- numbers


def _numbers(function: str, args: tuple[Any, ...]) -> list[Any]:
    values = list(args[0]) if len(args) == 1 and is_array(args[0]) else list(args)
    for value in values:
        if not is_number(value):
            raise Failure(f"invalid argument for {function} (type {type_name(value)})")
    if not values:
        raise Failure(f"{function} needs at least one number")
    return values


@core.function("max", (1, None))
def _max(*args: Any) -> Any:
    return max(_numbers("max", args))


@core.function("min", (1, None))
def _min(*args: Any) -> Any:
    return min(_numbers("min", args))


@core.function("mean", (1, None))
def _mean(*args: Any) -> float:
    values = _numbers("mean", args)
    return float(sum(values)) / len(values)


@core.function("median", (1, None))
def _median(*args: Any) -> float:
    values = sorted(_numbers("median", args))
    middle = len(values) // 2
    return float(values[middle]) if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


@core.function("abs", 1)
def _abs(value: Any) -> Any:
    return abs(_numbers("abs", (value,))[0])


@core.function("ceil", 1)
def _ceil(value: Any) -> float:
    return float(math.ceil(_numbers("ceil", (value,))[0]))


@core.function("floor", 1)
def _floor(value: Any) -> float:
    return float(math.floor(_numbers("floor", (value,))[0]))


@core.function("round", 1)
def _round(value: Any) -> float:
    """Half away from zero, like Go's math.Round (Python's round() rounds half to even)."""
    number = float(_numbers("round", (value,))[0])
    truncated = math.trunc(number)
    return float(truncated + math.copysign(1, number) if abs(number - truncated) >= 0.5 else truncated)


# ---------------------------------------------------------------- arrays and maps


@core.function("first", 1)
def _first(items: Any) -> Any:
    array = require_array("first", 1, items)
    return array[0] if array else None


@core.function("last", 1)
def _last(items: Any) -> Any:
    array = require_array("last", 1, items)
    return array[-1] if array else None


@core.function("take", 2)
def _take(items: Any, count: Any) -> list[Any]:
    return require_array("take", 1, items)[: max(require_int("take", 2, count), 0)]


@core.function("reverse", 1)
def _reverse(items: Any) -> list[Any]:
    return require_array("reverse", 1, items)[::-1]


@core.function("uniq", 1)
def _uniq(items: Any) -> list[Any]:
    seen: list[Any] = []
    for item in require_array("uniq", 1, items):
        if not any(item == other and type(item) is type(other) for other in seen):
            seen.append(item)
    return seen


@core.function("concat", (1, None))
def _concat(*arrays: Any) -> list[Any]:
    return [item for position, array in enumerate(arrays, 1) for item in require_array("concat", position, array)]


@core.function("flatten", 1)
def _flatten(items: Any) -> list[Any]:
    flat: list[Any] = []
    pending = [iter(require_array("flatten", 1, items))]
    while pending:
        item = next(pending[-1], pending)
        if item is pending:
            pending.pop()
        elif is_array(item):
            pending.append(iter(item))
        else:
            flat.append(item)
    return flat


def sort_key_check(function: str, items: list[Any]) -> None:
    numbers = all(is_number(item) for item in items)
    strings = all(isinstance(item, str) for item in items)
    if not (numbers or strings):
        raise Failure(f"{function}: can only sort numbers or strings, all of one kind")


@core.function("sort", (1, 2))
def _sort(items: Any, order: Any = "asc") -> list[Any]:
    array = require_array("sort", 1, items)
    sort_key_check("sort", array)
    return sorted(array, reverse=sort_order("sort", order))


def sort_order(function: str, order: Any) -> bool:
    """True for descending."""
    if order not in ("asc", "desc"):
        raise Failure(f"{function}: order must be 'asc' or 'desc', not {describe(order)}")
    return bool(order == "desc")


@core.function("keys", 1)
def _keys(mapping: Any) -> list[Any]:
    if not is_map(mapping):
        raise Failure(f"keys: argument must be a map, not {type_name(mapping)}")
    return list(mapping)


@core.function("values", 1)
def _values(mapping: Any) -> list[Any]:
    if not is_map(mapping):
        raise Failure(f"values: argument must be a map, not {type_name(mapping)}")
    return list(mapping.values())


@core.function("toPairs", 1)
def _to_pairs(mapping: Any) -> list[Any]:
    if not is_map(mapping):
        raise Failure(f"toPairs: argument must be a map, not {type_name(mapping)}")
    return [[key, value] for key, value in mapping.items()]


@core.function("fromPairs", 1)
def _from_pairs(pairs: Any) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for pair in require_array("fromPairs", 1, pairs):
        if not (is_array(pair) and len(pair) == 2) or is_array(pair[0]) or is_map(pair[0]):
            raise Failure(f"fromPairs: {describe(pair)} is not a [key, value] pair")
        result[pair[0]] = pair[1]
    return result


@core.function("get", 2)
def _get(container: Any, key: Any) -> Any:
    """Like `container[key]`, but nil instead of an error when the index or key is missing."""
    if is_array(container) and is_int(key):
        index = key + len(container) if key < 0 else key
        return container[index] if 0 <= index < len(container) else None
    if is_map(container) and not (is_array(key) or is_map(key)):
        return container.get(key)
    return None


FUNCTIONS: dict[str, Builtin] = {**core.functions, **SPRIG.functions}
