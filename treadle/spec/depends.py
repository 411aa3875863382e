"""Argo's `depends` language for DAG tasks: "A && (B.Failed || !C.Succeeded)".

A bare task name means "A.Succeeded || A.Skipped || A.Daemoned"; with
`continueOn` set on A, A's failures or errors count too. `dependencies: [A, B]`
is the same as `depends: "A && B"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from treadle.errors import FieldViolation, InvalidSpec

RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")
TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([A-Za-z0-9][-A-Za-z0-9_]*)(?:\.([A-Za-z]+))?)")


@dataclass(frozen=True)
class Ref:
    task: str
    result: str  # "" for a bare name


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class Binary:
    """op over every operand; a chain like a && b && c is one node, so long chains stay shallow."""

    op: str
    operands: tuple[Expr, ...]


Expr = Ref | Not | Binary


def parse(text: str, field: str = "depends") -> Expr:
    tokens = _tokens(text, field)
    pos = 0

    def peek() -> str | Ref | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str | Ref | None:
        nonlocal pos
        tok = peek()
        pos += 1
        return tok

    def binary(op: str, operand: object) -> Expr:
        operands: list[Expr] = [operand()]  # type: ignore[operator]
        while peek() == op:
            take()
            operands.append(operand())  # type: ignore[operator]
        return operands[0] if len(operands) == 1 else Binary(op, tuple(operands))

    def or_expr() -> Expr:
        return binary("||", and_expr)

    def and_expr() -> Expr:
        return binary("&&", unary)

    def unary() -> Expr:
        tok = take()
        if tok == "!":
            return Not(unary())
        if tok == "(":
            inner = or_expr()
            if take() != ")":
                raise InvalidSpec(FieldViolation(field, f"missing ')' in {text!r}"))
            return inner
        if isinstance(tok, Ref):
            return tok
        raise InvalidSpec(FieldViolation(field, f"unexpected {tok or 'end'!r} in {text!r}"))

    expr = or_expr()
    if pos != len(tokens):
        raise InvalidSpec(FieldViolation(field, f"unexpected {tokens[pos]!r} in {text!r}"))
    return expr


def _tokens(text: str, field: str) -> list[str | Ref]:
    out: list[str | Ref] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            raise InvalidSpec(FieldViolation(field, f"cannot read {text[pos:]!r} in {text!r}"))
        if m.group(1):
            out.append(m.group(1))
        else:
            result = m.group(3) or ""
            if result and result not in RESULTS:
                raise InvalidSpec(
                    FieldViolation(
                        field, f"unknown result {result!r} of task {m.group(2)!r}; use one of {', '.join(RESULTS)}"
                    )
                )
            out.append(Ref(m.group(2), result))
        pos = m.end()
    if not out:
        raise InvalidSpec(FieldViolation(field, "depends is empty"))
    return out


def tasks_of(expr: Expr) -> list[str]:
    """Task names the expression mentions, in order of first mention."""
    seen: dict[str, None] = {}
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref):
            seen.setdefault(node.task, None)
        elif isinstance(node, Not):
            stack.append(node.operand)
        else:
            stack.extend(reversed(node.operands))
    return list(seen)


def from_dependencies(names: list[str]) -> Expr:
    refs = tuple(Ref(name, "") for name in names)
    return refs[0] if len(refs) == 1 else Binary("&&", refs)


def failures_asked(expr: Expr) -> set[str]:
    """Tasks whose failure the expression asks about (so a failure of those tasks is handled)."""
    asked: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref):
            if node.result in ("Failed", "Errored", "AllFailed"):
                asked.add(node.task)
        elif isinstance(node, Not):
            stack.append(node.operand)
        else:
            stack.extend(node.operands)
    return asked


@dataclass(frozen=True)
class TaskOutcome:
    phase: str
    continue_on_failed: bool = False
    continue_on_error: bool = False
    any_succeeded: bool = False
    all_failed: bool = False
    daemoned: bool = False


def evaluate(expr: Expr, outcomes: dict[str, TaskOutcome]) -> bool:
    if isinstance(expr, Not):
        return not evaluate(expr.operand, outcomes)
    if isinstance(expr, Binary):
        if expr.op == "&&":
            return all(evaluate(operand, outcomes) for operand in expr.operands)
        return any(evaluate(operand, outcomes) for operand in expr.operands)
    o = outcomes[expr.task]
    if expr.result == "":
        return (
            o.phase in ("Succeeded", "Skipped")
            or o.daemoned
            or (o.continue_on_failed and o.phase == "Failed")
            or (o.continue_on_error and o.phase == "Error")
        )
    return {
        "Succeeded": o.phase == "Succeeded",
        "Failed": o.phase == "Failed",
        "Errored": o.phase == "Error",
        "Skipped": o.phase == "Skipped",
        "Omitted": o.phase == "Omitted",
        "Daemoned": o.daemoned,
        "AnySucceeded": o.any_succeeded,
        "AllFailed": o.all_failed,
    }[expr.result]
