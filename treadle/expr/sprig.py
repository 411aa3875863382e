"""The sprig functions Argo exposes as `sprig.<name>` in expressions.

Argument order is sprig's, which puts the subject last so templates can pipe
into it: `sprig.replace(old, new, s)`, `sprig.trimPrefix(prefix, s)`,
`sprig.default(fallback, value)`, `sprig.join(sep, list)`.

As in sprig, the numeric casts never fail (`sprig.int("x")` is 0) and the
integer arithmetic (add, sub, mul, div, mod, max, min) works on int64. Two
deliberate differences: `sprig.b64dec` of invalid input is an error (sprig
returns the Go error text as the result), and containers print as JSON.
Non-deterministic functions (now, rand*, uuidv4) and date functions are not
provided.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from typing import Any

from treadle.expr import patterns
from treadle.expr.conversions import (
    cast_to_float,
    cast_to_int,
    go_split,
    parse_decimal_int,
    repeat,
    replace_all,
    require_array,
    require_int,
    require_string,
)
from treadle.expr.errors import Failure
from treadle.expr.limits import MAX_COLLECTION_ITEMS, MAX_STRING_LENGTH
from treadle.expr.registry import Registry
from treadle.expr.values import (
    check_string_length,
    checked_int,
    format_value,
    from_json,
    is_array,
    is_empty,
    is_map,
    to_json,
    values_equal,
)

SPRIG = Registry(prefix="sprig.")
sprig = SPRIG.function


def _text(value: Any) -> str:
    """sprig's strval: strings as they are, anything else printed."""
    return format_value(value)


# ---------------------------------------------------------------- strings


@sprig("upper", 1)
def _upper(text: Any) -> str:
    return require_string("sprig.upper", 1, text).upper()


@sprig("lower", 1)
def _lower(text: Any) -> str:
    return require_string("sprig.lower", 1, text).lower()


@sprig("title", 1)
def _title(text: Any) -> str:
    words = require_string("sprig.title", 1, text).split(" ")
    return " ".join(word[:1].upper() + word[1:] for word in words)


@sprig("trim", 1)
def _trim(text: Any) -> str:
    return require_string("sprig.trim", 1, text).strip()


@sprig("trimAll", 2)
def _trim_all(characters: Any, text: Any) -> str:
    return require_string("sprig.trimAll", 2, text).strip(require_string("sprig.trimAll", 1, characters))


@sprig("trimPrefix", 2)
def _trim_prefix(prefix: Any, text: Any) -> str:
    return require_string("sprig.trimPrefix", 2, text).removeprefix(require_string("sprig.trimPrefix", 1, prefix))


@sprig("trimSuffix", 2)
def _trim_suffix(suffix: Any, text: Any) -> str:
    return require_string("sprig.trimSuffix", 2, text).removesuffix(require_string("sprig.trimSuffix", 1, suffix))


@sprig("contains", 2)
def _contains(part: Any, text: Any) -> bool:
    return require_string("sprig.contains", 1, part) in require_string("sprig.contains", 2, text)


@sprig("hasPrefix", 2)
def _has_prefix(prefix: Any, text: Any) -> bool:
    return require_string("sprig.hasPrefix", 2, text).startswith(require_string("sprig.hasPrefix", 1, prefix))


@sprig("hasSuffix", 2)
def _has_suffix(suffix: Any, text: Any) -> bool:
    return require_string("sprig.hasSuffix", 2, text).endswith(require_string("sprig.hasSuffix", 1, suffix))


@sprig("replace", 3)
def _replace(old: Any, new: Any, text: Any) -> str:
    return replace_all("sprig.replace", text, old, new)


@sprig("repeat", 2)
def _repeat(count: Any, text: Any) -> str:
    return repeat("sprig.repeat", require_string("sprig.repeat", 2, text), require_int("sprig.repeat", 1, count))


@sprig("substr", 3)
def _substr(start: Any, end: Any, text: Any) -> str:
    first, last = require_int("sprig.substr", 1, start), require_int("sprig.substr", 2, end)
    value = require_string("sprig.substr", 3, text)
    if first < 0:
        return value[:last]
    if last < 0 or last > len(value):
        return value[first:]
    return value[first:last]


@sprig("trunc", 2)
def _trunc(count: Any, text: Any) -> str:
    length, value = require_int("sprig.trunc", 1, count), require_string("sprig.trunc", 2, text)
    if length < 0:
        return value[length:] if len(value) + length > 0 else value
    return value[:length]


@sprig("nospace", 1)
def _nospace(text: Any) -> str:
    return "".join(require_string("sprig.nospace", 1, text).split())


@sprig("quote", (0, None))
def _quote(*values: Any) -> str:
    # Go's %q: a double-quoted string with Go escapes; JSON's escaping agrees for ordinary text.
    return " ".join(json.dumps(_text(value), ensure_ascii=False) for value in values if value is not None)


@sprig("squote", (0, None))
def _squote(*values: Any) -> str:
    return " ".join(f"'{_text(value)}'" for value in values if value is not None)


@sprig("cat", (0, None))
def _cat(*values: Any) -> str:
    return " ".join(_text(value) for value in values if value is not None)


@sprig("indent", 2)
def _indent(spaces: Any, text: Any) -> str:
    pad = " " * max(require_int("sprig.indent", 1, spaces), 0)
    value = require_string("sprig.indent", 2, text)
    check_string_length(len(value) + len(pad) * (value.count("\n") + 1))
    return pad + value.replace("\n", "\n" + pad)


@sprig("toString", 1)
def _to_string(value: Any) -> str:
    return _text(value)


@sprig("b64enc", 1)
def _b64enc(text: Any) -> str:
    return base64.b64encode(_text(text).encode()).decode()


@sprig("b64dec", 1)
def _b64dec(text: Any) -> str:
    try:
        return base64.b64decode(_text(text), validate=True).decode(errors="replace")
    except binascii.Error as error:
        raise Failure(f"sprig.b64dec: invalid base64: {error}") from None


@sprig("sha256sum", 1)
def _sha256sum(text: Any) -> str:
    return hashlib.sha256(require_string("sprig.sha256sum", 1, text).encode()).hexdigest()


@sprig("sha1sum", 1)
def _sha1sum(text: Any) -> str:
    return hashlib.sha1(require_string("sprig.sha1sum", 1, text).encode(), usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------- regular expressions


@sprig("regexMatch", 2)
def _regex_match(pattern: Any, text: Any) -> bool:
    compiled = patterns.compile_pattern(require_string("sprig.regexMatch", 1, pattern))
    return compiled.search(require_string("sprig.regexMatch", 2, text)) is not None


@sprig("regexFind", 2)
def _regex_find(pattern: Any, text: Any) -> str:
    found = patterns.compile_pattern(require_string("sprig.regexFind", 1, pattern)).search(
        require_string("sprig.regexFind", 2, text)
    )
    return found.group(0) if found else ""


@sprig("regexFindAll", 3)
def _regex_find_all(pattern: Any, text: Any, limit: Any) -> list[str]:
    compiled = patterns.compile_pattern(require_string("sprig.regexFindAll", 1, pattern))
    most = require_int("sprig.regexFindAll", 3, limit)
    found: list[str] = []
    for match in compiled.finditer(require_string("sprig.regexFindAll", 2, text)):
        if 0 <= most <= len(found) or len(found) >= MAX_COLLECTION_ITEMS:
            break
        found.append(match.group(0))
    return found


@sprig("regexReplaceAll", 3)
def _regex_replace_all(pattern: Any, text: Any, replacement: Any) -> str:
    """Replace every match; `$1` and `${name}` in the replacement expand as in Go."""
    compiled = patterns.compile_pattern(require_string("sprig.regexReplaceAll", 1, pattern))
    template = require_string("sprig.regexReplaceAll", 3, replacement)
    value = require_string("sprig.regexReplaceAll", 2, text)
    too_long = Failure(f"sprig.regexReplaceAll: result too long (the limit is {MAX_STRING_LENGTH} characters)")
    if "$" not in template:  # a fixed replacement: bound the size up front, then replace at C speed
        matches = sum(1 for _ in compiled.finditer(value))
        if len(value) + matches * len(template) > MAX_STRING_LENGTH:
            raise too_long
        return compiled.sub(template.replace("\\", "\\\\"), value)
    budget = [MAX_STRING_LENGTH - len(value)]

    def expand(match: re.Match[str]) -> str:
        expanded = patterns.expand_go_template(match, template)
        budget[0] -= len(expanded)
        if budget[0] < 0:
            raise too_long
        return expanded

    return compiled.sub(expand, value)


# ---------------------------------------------------------------- defaults and logic


@sprig("default", 2)
def _default(fallback: Any, value: Any) -> Any:
    return fallback if is_empty(value) else value


@sprig("empty", 1)
def _empty(value: Any) -> bool:
    return is_empty(value)


@sprig("coalesce", (0, None))
def _coalesce(*values: Any) -> Any:
    return next((value for value in values if not is_empty(value)), None)


@sprig("ternary", 3)
def _ternary(when_true: Any, when_false: Any, condition: Any) -> Any:
    if not isinstance(condition, bool):
        raise Failure("sprig.ternary: the third argument must be a bool")
    return when_true if condition else when_false


# ---------------------------------------------------------------- numbers


@sprig("atoi", 1)
def _atoi(text: Any) -> int:
    return parse_decimal_int(require_string("sprig.atoi", 1, text)) or 0


@sprig("int", 1)
def _int(value: Any) -> int:
    return cast_to_int(value)


SPRIG.alias("int64", "int")


@sprig("float64", 1)
def _float64(value: Any) -> float:
    return cast_to_float(value)


@sprig("add", (0, None))
def _add(*values: Any) -> int:
    return checked_int(sum(cast_to_int(value) for value in values))


@sprig("add1", 1)
def _add1(value: Any) -> int:
    return checked_int(cast_to_int(value) + 1)


@sprig("sub", 2)
def _sub(left: Any, right: Any) -> int:
    return checked_int(cast_to_int(left) - cast_to_int(right))


@sprig("mul", (1, None))
def _mul(*values: Any) -> int:
    product = 1
    for value in values:
        product = checked_int(product * cast_to_int(value))
    return product


def _divisor(function: str, value: Any) -> int:
    divisor = cast_to_int(value)
    if divisor == 0:
        raise Failure(f"{function}: integer divide by zero")
    return divisor


@sprig("div", 2)
def _div(left: Any, right: Any) -> int:
    dividend, divisor = cast_to_int(left), _divisor("sprig.div", right)
    quotient = abs(dividend) // abs(divisor)  # Go truncates toward zero
    return checked_int(quotient if (dividend < 0) == (divisor < 0) else -quotient)


@sprig("mod", 2)
def _mod(left: Any, right: Any) -> int:
    dividend, divisor = cast_to_int(left), _divisor("sprig.mod", right)
    remainder = abs(dividend) % abs(divisor)
    return -remainder if dividend < 0 else remainder


@sprig("max", (1, None))
def _max(*values: Any) -> int:
    return max(cast_to_int(value) for value in values)


@sprig("min", (1, None))
def _min(*values: Any) -> int:
    return min(cast_to_int(value) for value in values)


@sprig("floor", 1)
def _floor(value: Any) -> float:
    return float(math.floor(cast_to_float(value)))


@sprig("ceil", 1)
def _ceil(value: Any) -> float:
    return float(math.ceil(cast_to_float(value)))


# ---------------------------------------------------------------- lists and maps


@sprig("list", (0, None))
def _list(*values: Any) -> list[Any]:
    return list(values)


@sprig("join", 2)
def _join(separator: Any, items: Any) -> str:
    strings = [_text(item) for item in items if item is not None] if is_array(items) else [_text(items)]
    glue = require_string("sprig.join", 1, separator)
    check_string_length(sum(len(item) for item in strings) + len(glue) * max(len(strings) - 1, 0))
    return glue.join(strings)


@sprig("splitList", 2)
def _split_list(separator: Any, text: Any) -> list[str]:
    return go_split(require_string("sprig.splitList", 2, text), require_string("sprig.splitList", 1, separator))


@sprig("first", 1)
def _first(items: Any) -> Any:
    array = require_array("sprig.first", 1, items)
    return array[0] if array else None


@sprig("last", 1)
def _last(items: Any) -> Any:
    array = require_array("sprig.last", 1, items)
    return array[-1] if array else None


@sprig("rest", 1)
def _rest(items: Any) -> list[Any]:
    return require_array("sprig.rest", 1, items)[1:]


@sprig("initial", 1)
def _initial(items: Any) -> list[Any]:
    return require_array("sprig.initial", 1, items)[:-1]


@sprig("has", 2)
def _has(needle: Any, haystack: Any) -> bool:
    return any(values_equal(needle, item) for item in require_array("sprig.has", 2, haystack))


@sprig("uniq", 1)
def _uniq(items: Any) -> list[Any]:
    unique: list[Any] = []
    for item in require_array("sprig.uniq", 1, items):
        if not any(values_equal(item, seen) for seen in unique):
            unique.append(item)
    return unique


@sprig("until", 1)
def _until(count: Any) -> list[int]:
    limit = require_int("sprig.until", 1, count)
    if abs(limit) > MAX_COLLECTION_ITEMS:
        raise Failure(f"sprig.until: {limit} items is above the limit of {MAX_COLLECTION_ITEMS}")
    return list(range(limit)) if limit >= 0 else list(range(0, limit, -1))


@sprig("dict", (0, None))
def _dict(*pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for index in range(0, len(pairs), 2):
        result[_text(pairs[index])] = pairs[index + 1] if index + 1 < len(pairs) else ""
    return result


@sprig("get", 2)
def _get(mapping: Any, key: Any) -> Any:
    if not is_map(mapping):
        raise Failure("sprig.get: the first argument must be a map")
    return mapping.get(require_string("sprig.get", 2, key), "")


@sprig("hasKey", 2)
def _has_key(mapping: Any, key: Any) -> bool:
    if not is_map(mapping):
        raise Failure("sprig.hasKey: the first argument must be a map")
    return require_string("sprig.hasKey", 2, key) in mapping


@sprig("keys", (1, None))
def _keys(*mappings: Any) -> list[Any]:
    if not all(is_map(mapping) for mapping in mappings):
        raise Failure("sprig.keys: every argument must be a map")
    return [key for mapping in mappings for key in mapping]


@sprig("toJson", 1)
def _to_json(value: Any) -> str:
    return to_json(value)


@sprig("fromJson", 1)
def _from_json(text: Any) -> Any:
    try:
        return from_json(require_string("sprig.fromJson", 1, text))
    except Failure:
        return None  # sprig's fromJson swallows the error; mustFromJson would report it
