"""Kubernetes resource quantities ("500m", "1.5", "64Mi", "1G", "129e6") as numbers."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)"  # the number
    r"(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"  # an exponent, or a suffix
)


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """The quantity's value in base units: "64Mi" -> 67108864, "250m" -> 0.25, "1e3" -> 1000."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise QuantityError(f"{text!r} is not a quantity (such as 500m, 2, 64Mi or 1G)")
    number, exponent, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise QuantityError(f"{text!r} is not a quantity") from None
    if exponent:
        return value * Decimal(10) ** int(exponent[1:])
    if suffix in BINARY_SUFFIXES:
        return value * BINARY_SUFFIXES[suffix]
    return value * DECIMAL_SUFFIXES[suffix or ""]


def memory_bytes(text: str) -> int:
    """A memory quantity in whole bytes (rounded up, as Kubernetes does)."""
    return math.ceil(parse_quantity(text))


def nano_cpus(text: str) -> int:
    """A cpu quantity ("500m", "2") in billionths of a cpu, Docker's --cpus unit."""
    return math.ceil(parse_quantity(text) * Decimal(10**9))
