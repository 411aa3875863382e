"""Durations as Argo writes them: "30" (seconds), "30s", "1m30s", "2h", "500ms"."""

from __future__ import annotations

import re

from treadle.errors import FieldViolation, InvalidSpec

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_duration(text: str | int | float, field: str = "duration") -> float:
    """Seconds in text; raises InvalidSpec naming field when it is not a duration."""
    if isinstance(text, (int, float)):
        return float(text)
    raw = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    pos, total = 0, 0.0
    for m in _PART.finditer(raw):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(raw) or not raw:
        raise InvalidSpec(FieldViolation(field, f"{text!r} is not a duration (use 30, 30s, 1m30s or 2h)"))
    return total
