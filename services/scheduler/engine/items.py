"""Loop expansion: withItems, withParam and withSequence, and what {{item}} means per item."""

from __future__ import annotations

import json
import re
from typing import Any

from treadle.errors import TreadleError


class LoopError(TreadleError):
    """A loop's items could not be produced."""


def item_text(item: Any) -> str:
    """How an item renders inside {{item}}: strings as-is, numbers plainly, maps and lists as JSON."""
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    if isinstance(item, (int, float)):
        return str(item)
    return json.dumps(item, separators=(",", ":"), sort_keys=True)


def item_label(item: Any) -> str:
    """The part of an expanded node's name that tells the item: name(0:label)."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{item_text(v)}" for k, v in sorted(item.items()))
    return item_text(item)


def item_names(item: Any) -> dict[str, str]:
    """Every {{item...}} name an item offers."""
    names = {"item": item_text(item)}
    if isinstance(item, dict):
        for key, value in item.items():
            names[f"item.{key}"] = item_text(value)
    return names


def parse_param_list(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoopError(f"withParam value could not be parsed as a JSON list: {text.strip()[:200]!r}: {exc}") from None
    if not isinstance(value, list):
        raise LoopError(f"withParam value is not a JSON list: {text.strip()[:200]!r}")
    return value


_FORMAT = re.compile(r"%(-?0?\d*)([dxXos])")


def sequence(count: str, start: str, end: str, fmt: str) -> list[str]:
    """The numbers of a withSequence, rendered with fmt (printf-style)."""
    try:
        first = int(start) if start else 0
        if count:
            if end:
                raise LoopError("withSequence takes count or end, not both")
            numbers = list(range(first, first + int(count)))
        elif end:
            last = int(end)
            step = 1 if last >= first else -1
            numbers = list(range(first, last + step, step))
        else:
            raise LoopError("withSequence needs count or end")
    except ValueError as exc:
        raise LoopError(f"withSequence values must be whole numbers: {exc}") from None
    if len(numbers) > 1_000_000:
        raise LoopError(f"withSequence of {len(numbers)} items is too long")
    return [format_number(n, fmt) for n in numbers]


def format_number(n: int, fmt: str) -> str:
    if not fmt:
        return str(n)
    m = _FORMAT.search(fmt)
    if m is None:
        raise LoopError(f"withSequence format {fmt!r} has no %d, %x, %o or %s verb")
    flags, verb = m.groups()
    spec = {"d": "d", "s": "d", "x": "x", "X": "X", "o": "o"}[verb]
    pad = flags.lstrip("-")
    body = format(n, (("0" + pad.lstrip("0")) if pad.startswith("0") and pad != "0" else pad) + spec)
    if flags.startswith("-"):
        body = format(n, "<" + pad.lstrip("0") + spec) if pad else body
    return fmt[: m.start()] + body + fmt[m.end() :]
