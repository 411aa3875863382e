"""The evaluator's public error and the internal failure it is built from.

Code deep inside the lexer, parser, operators and functions raises `Failure`
with a reason and, when it knows one, the offset in the expression text. The
public entry points turn it into an `ExpressionError` whose message quotes the
expression and names the line and column, so every error reads the same way:

    expression 'asInt(x) - "a"': unknown name 'x' (column 7)
"""

from __future__ import annotations

from treadle.errors import TreadleError

# Longer expressions are shortened in messages; the column still refers to the full text.
QUOTED_EXPRESSION_LIMIT = 200


class ExpressionError(TreadleError):
    """An expression or `when` condition could not be parsed or evaluated.

    `reason` is the bare explanation, `expression` the text it concerns, and
    `line`/`column` (1-based) point at the offending token when that is known.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        expression: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = reason or message
        self.expression = expression
        self.line = line
        self.column = column
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields do not survive the default exception pickling.
        fields = {"reason": self.reason, "expression": self.expression, "line": self.line, "column": self.column}
        return (_rebuild_error, (str(self), fields))


def _rebuild_error(message: str, fields: dict[str, object]) -> ExpressionError:
    error = ExpressionError(message)
    error.__dict__.update(fields)
    return error


class Failure(Exception):
    """Internal: something went wrong at `offset` (0-based, None when unknown)."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset

    def to_error(self, expression: str, kind: str = "expression") -> ExpressionError:
        return error_at(expression, self.reason, self.offset, kind=kind)


def quote_expression(expression: str) -> str:
    """The expression in quotes for a message, shortened when very long."""
    if len(expression) > QUOTED_EXPRESSION_LIMIT:
        expression = expression[:QUOTED_EXPRESSION_LIMIT] + "…"
    return repr(expression)


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    line_start = text.rfind("\n", 0, offset) + 1
    return line, offset - line_start + 1


def error_at(expression: str, reason: str, offset: int | None, *, kind: str = "expression") -> ExpressionError:
    """An ExpressionError that quotes the expression and says where the problem is."""
    message = f"{kind} {quote_expression(expression)}: {reason}"
    if offset is None:
        return ExpressionError(message, reason=reason, expression=expression)
    line, column = line_and_column(expression, offset)
    where = f"line {line}, column {column}" if "\n" in expression else f"column {column}"
    return ExpressionError(f"{message} ({where})", reason=reason, expression=expression, line=line, column=column)
