"""Walks a syntax tree and computes its value.

Safety rests on three things. Names are looked up only in the environment
mapping (never as Python attributes), so `x.__class__` is just a missing key.
Only registered built-ins can be called. And every evaluation has a work
budget, charged per node and per item or character built, so loops over huge
ranges stop with an error instead of hanging.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from treadle.expr import closures, operators
from treadle.expr.errors import Failure
from treadle.expr.functions import FUNCTIONS, PREDICATE_FUNCTIONS
from treadle.expr.limits import MAX_WORK_UNITS, STRING_CHARS_PER_WORK_UNIT
from treadle.expr.nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Conditional,
    Identifier,
    Let,
    Literal,
    MapLiteral,
    Member,
    Node,
    Pointer,
    Predicate,
    Slice,
    Unary,
)
from treadle.expr.values import check_size, describe, is_array, is_int, is_map, type_name


class Dialect(Enum):
    EXPR = "expr"  # `{{=...}}` tags, expr-lang/expr
    GOVALUATE = "govaluate"  # `when` conditions, Knetic/govaluate


@dataclass(frozen=True)
class Frame:
    """What `#`, `#index` and `#acc` mean inside the predicate being run."""

    element: Any
    index: int
    accumulator: Any


class Interpreter:
    def __init__(self, env: Mapping[str, Any], dialect: Dialect = Dialect.EXPR) -> None:
        self.env = env
        self.binary_operations = operators.GOVALUATE_BINARY if dialect is Dialect.GOVALUATE else operators.EXPR_BINARY
        self.work_done = 0
        self.frames: list[Frame] = []
        self.bindings: dict[str, Any] = {}
        self.handlers: dict[type[Node], Callable[[Any], Any]] = {
            Literal: self.literal,
            Identifier: self.identifier,
            Pointer: self.pointer,
            Member: self.member,
            Slice: self.slice,
            Call: self.call,
            Unary: self.unary,
            Binary: self.binary,
            Conditional: self.conditional,
            ArrayLiteral: self.array,
            MapLiteral: self.map,
            Let: self.let,
        }

    def evaluate(self, node: Node) -> Any:
        self.charge(1)
        try:
            return self.handlers[type(node)](node)
        except Failure as failure:
            if failure.offset is None:  # the innermost node that knows nothing better claims the error
                failure.offset = node.offset
            raise

    def charge(self, units: int) -> None:
        self.work_done += units
        if self.work_done > MAX_WORK_UNITS:
            raise Failure(f"expression is too expensive to evaluate (more than {MAX_WORK_UNITS} steps)")

    def built(self, value: Any) -> Any:
        """Account for a newly built value: reject it when too large, charge for its size."""
        check_size(value)
        if isinstance(value, str):
            self.charge(len(value) // STRING_CHARS_PER_WORK_UNIT)
        elif isinstance(value, list | dict):
            self.charge(len(value))
        return value

    # ------------------------------------------------------------ leaves

    def literal(self, node: Literal) -> Any:
        return node.value

    def identifier(self, node: Identifier) -> Any:
        name = node.name
        if name in self.bindings:
            return self.bindings[name]
        if name in self.env:
            return self.env[name]
        if name == "$env":
            return self.env
        if name == "sprig":
            raise Failure("sprig is a collection of functions: call one, like sprig.trim(x)")
        raise Failure(f"unknown name {name!r}")

    def pointer(self, node: Pointer) -> Any:
        frame = self.frames[-1]
        if node.name == "index":
            return frame.index
        if node.name == "acc":
            return frame.accumulator
        return frame.element

    # ------------------------------------------------------------ access

    def member(self, node: Member) -> Any:
        target = self.evaluate(node.target)
        if target is None and node.optional:
            return None
        return fetch(target, self.evaluate(node.key))

    def slice(self, node: Slice) -> Any:
        target = self.evaluate(node.target)
        if not (isinstance(target, str) or is_array(target)):
            raise Failure(f"cannot slice {type_name(target)}")
        length = len(target)
        start = 0 if node.start is None else slice_bound(self.evaluate(node.start), length)
        end = length if node.end is None else slice_bound(self.evaluate(node.end), length)
        return self.built(
            target[start : max(start, end)] if isinstance(target, str) else list(target[start : max(start, end)])
        )

    # ------------------------------------------------------------ operators

    def unary(self, node: Unary) -> Any:
        operand = self.evaluate(node.operand)
        if node.operator in ("!", "not"):
            return not operators.require_bool(node.operator, operand)
        if node.operator == "-":
            return operators.negate(operand)
        return operators.plus(operand)

    def binary(self, node: Binary) -> Any:
        operator = node.operator
        if operator in ("&&", "and", "||", "or"):
            left = operators.require_bool(operator, self.evaluate(node.left))
            if left == (operator in ("||", "or")):
                return left
            return operators.require_bool(operator, self.evaluate(node.right))
        if operator == "??":
            left = self.evaluate(node.left)
            return self.evaluate(node.right) if left is None else left
        if operator == "?":  # govaluate's half-ternary: `c ? x` is x when c, else nil
            return self.evaluate(node.right) if operators.require_bool("?", self.evaluate(node.left)) else None
        if operator == ":":  # ...and `y : z` is y unless it is nil
            left = self.evaluate(node.left)
            return self.evaluate(node.right) if left is None else left
        left, right = self.evaluate(node.left), self.evaluate(node.right)
        operation = self.binary_operations.get(operator)
        if operation is None:
            raise Failure(f"unsupported operator {operator!r}")
        return self.built(operation(left, right))

    def conditional(self, node: Conditional) -> Any:
        condition = self.evaluate(node.condition)
        if not isinstance(condition, bool):
            raise Failure(f"the condition of ?: must be a bool, not {type_name(condition)} {describe(condition)}")
        return self.evaluate(node.when_true if condition else node.when_false)

    # ------------------------------------------------------------ constructors and calls

    def array(self, node: ArrayLiteral) -> list[Any]:
        return self.built([self.evaluate(item) for item in node.items])  # type: ignore[no-any-return]

    def map(self, node: MapLiteral) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.entries:
            key = self.evaluate(key_node)
            if is_array(key) or is_map(key):
                raise Failure(f"a map key cannot be {type_name(key)}", key_node.offset)
            result[key] = self.evaluate(value_node)
        return self.built(result)  # type: ignore[no-any-return]

    def let(self, node: Let) -> Any:
        saved = self.bindings
        self.bindings = {**saved, node.name: self.evaluate(node.value)}
        try:
            return self.evaluate(node.body)
        finally:
            self.bindings = saved

    def call(self, node: Call) -> Any:
        if node.name in PREDICATE_FUNCTIONS:
            return self.built(self.predicate_call(node))
        args = [self.evaluate(arg) for arg in node.args]
        try:
            return self.built(FUNCTIONS[node.name].implementation(*args))
        except RecursionError:
            raise Failure(f"{node.name}: value is nested too deeply") from None

    def predicate_call(self, node: Call) -> Any:
        items = self.evaluate(node.args[0])
        predicate = node.args[1] if len(node.args) > 1 else None
        extra = [self.evaluate(arg) for arg in node.args[2:]]
        if not isinstance(predicate, Predicate):
            return closures.call(node.name, items, None, extra)
        body = predicate.body

        def run(element: Any, index: int, accumulator: Any) -> Any:
            self.charge(2)  # a predicate call costs more than a node: keep the worst case near a second
            self.frames.append(Frame(element, index, accumulator))
            try:
                return self.evaluate(body)
            finally:
                self.frames.pop()

        return closures.call(node.name, items, run, extra)


def fetch(target: Any, key: Any) -> Any:
    """`target[key]`: a map entry (nil when missing), an array element, or a character."""
    if is_map(target):
        if is_array(key) or is_map(key):
            raise Failure(f"cannot use {type_name(key)} as a map key")
        return target.get(key)
    if is_array(target) or isinstance(target, str):
        if not (is_int(key) or (isinstance(key, float) and math.isfinite(key))):
            raise Failure(f"cannot fetch {describe(key)} from {type_name(target)}")
        index = int(key)
        length = len(target)
        position = index + length if index < 0 else index
        if not 0 <= position < length:
            raise Failure(f"index out of range: {index} (length is {length})")
        return target[position]
    raise Failure(f"cannot fetch {describe(key)} from {type_name(target)}")


def slice_bound(value: Any, length: int) -> int:
    """A slice bound as expr clamps it: negative counts from the end, then kept within 0..length."""
    if not (is_int(value) or (isinstance(value, float) and math.isfinite(value))):
        raise Failure(f"slice bounds must be integers, not {type_name(value)} {describe(value)}")
    bound = int(value)
    if bound < 0:
        bound += length
    return max(0, min(bound, length))
