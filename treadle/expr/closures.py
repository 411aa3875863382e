"""The built-ins that take a predicate: all, any, none, one, filter, map, count, sum, find*, groupBy, sortBy, reduce.

The interpreter hands each one a `run(element, index, accumulator)` callback
that evaluates the predicate with `#`, `#index` and `#acc` bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.functions import sort_key_check, sort_order
from treadle.expr.values import checked_int, describe, is_array, is_int, is_map, is_number, type_name

RunPredicate = Callable[[Any, int, Any], Any]


def _truth(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Failure(f"{name}: the predicate must return a bool, not {type_name(value)} {describe(value)}")
    return value


def _add_numbers(name: str, values: list[Any]) -> Any:
    """The sum: an int when every value is one, else a float."""
    for value in values:
        if not is_number(value):
            raise Failure(f"{name}: cannot add {type_name(value)} {describe(value)}")
    if all(is_int(value) for value in values):
        return checked_int(sum(values))
    return sum(float(value) for value in values)  # added in order, as Go does


def call(name: str, items: Any, run: RunPredicate | None, extra: list[Any]) -> Any:
    """Run the predicate built-in `name` over items."""
    if not is_array(items):
        raise Failure(f"{name}: the first argument must be an array, not {type_name(items)} {describe(items)}")
    array = list(items)
    if run is None:  # count(xs) and sum(xs) without a predicate
        return _add_numbers(name, array) if name == "sum" else sum(1 for item in array if item is True)

    def test(index: int) -> bool:
        return _truth(name, run(array[index], index, None))

    positions = range(len(array))
    match name:
        case "all":
            return all(test(i) for i in positions)
        case "any":
            return any(test(i) for i in positions)
        case "none":
            return not any(test(i) for i in positions)
        case "one":
            return sum(1 for i in positions if test(i)) == 1
        case "filter":
            return [array[i] for i in positions if test(i)]
        case "map":
            return [run(array[i], i, None) for i in positions]
        case "count":
            return sum(1 for i in positions if test(i))
        case "sum":
            return _add_numbers(name, [run(array[i], i, None) for i in positions])
        case "find" | "findLast":
            searched = positions if name == "find" else reversed(positions)
            return next((array[i] for i in searched if test(i)), None)
        case "findIndex" | "findLastIndex":
            searched = positions if name == "findIndex" else reversed(positions)
            return next((i for i in searched if test(i)), -1)
        case "groupBy":
            return _group_by(array, run)
        case "sortBy":
            keys = [run(array[i], i, None) for i in positions]
            sort_key_check(name, keys)
            descending = sort_order(name, extra[0] if extra else "asc")
            order = sorted(positions, key=lambda i: keys[i], reverse=descending)
            return [array[i] for i in order]
        case "reduce":
            return _reduce(array, run, extra)
    raise Failure(f"unknown function {name!r}")


def _group_by(array: list[Any], run: RunPredicate) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for index, item in enumerate(array):
        key = run(item, index, None)
        if is_array(key) or is_map(key):
            raise Failure(f"groupBy: cannot group by {type_name(key)} {describe(key)}")
        groups.setdefault(key, []).append(item)
    return groups


def _reduce(array: list[Any], run: RunPredicate, extra: list[Any]) -> Any:
    if extra:
        accumulator, start = extra[0], 0
    elif array:
        accumulator, start = array[0], 1
    else:
        return None
    for index in range(start, len(array)):
        accumulator = run(array[index], index, accumulator)
    return accumulator
