"""`when` conditions, in the govaluate dialect Argo evaluates them with.

Argo substitutes `{{...}}` first, then hands the text to govaluate after
turning every variable token into a string, so `heads == heads` compares two
strings without quotes. Here a bare word is a string from the start.

Differences from govaluate, all of which only accept text govaluate rejects:

* A bare word may contain hyphens between word characters: `tails-2` is the
  string "tails-2". govaluate reads `tails - 2` and fails, since a string cannot
  be subtracted; so no condition that works in Argo changes meaning. A spaced
  `a - b` is still subtraction, and a word must start with a letter or `_`.
  Digits first is a number: `2021-01-01` is 2021 - 1 - 1 in both, so quote dates.
* A quoted string ends at its own closing quote (govaluate stops at either kind).
* `x in (a)`, a one-element list, is accepted.

Not supported: bitwise operators (`& | ^ << >> ~`) and govaluate's conversion
of date-like string literals to numbers.

Numbers are floats, as in govaluate. Precedence, lowest first: `? : ??`, `||`,
`&&`, comparisons (`== != < > <= >= =~ !~ in`), `+ -`, `* / %`, `**`, prefix `! -`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.limits import MAX_NESTING_DEPTH
from treadle.expr.nodes import ArrayLiteral, Binary, Literal, Node, Unary, check_tree_height

QUOTE_HINT = " (hint: wrap values with spaces or symbols in quotes)"
LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"?", ":", "??"}),
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!=", "<", ">", "<=", ">=", "=~", "!~", "in"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
    frozenset({"**"}),
)
OPERATORS = sorted(
    ["==", "!=", "<=", ">=", "=~", "!~", "&&", "||", "**", "??", "<<", ">>", *"<>!+-*/%?:&|^~"],
    key=len,
    reverse=True,
)
PRECEDENCE = {operator: level for level, operators in enumerate(LEVELS) for operator in operators}
UNSUPPORTED = frozenset({"&", "|", "^", "<<", ">>", "~"})


class Kind(Enum):
    VALUE = "value"
    OPERATOR = "operator"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    offset: int
    value: Any = None

    def describe(self) -> str:
        return "end of expression" if self.kind is Kind.END else repr(self.text)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_."


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(source):
        char, start = source[index], index
        if char.isspace():
            index += 1
            continue
        if char.isdigit() or (char == "." and source[index + 1 : index + 2].isdigit()):
            index = _read_number(source, index, tokens)
        elif char in "'\"":
            index = _read_string(source, index, tokens)
        elif char == "[":  # govaluate's escaped parameter name: `[any text]`
            close = source.find("]", index)
            if close == -1:
                raise Failure("unclosed '['", index)
            tokens.append(Token(Kind.VALUE, source[index : close + 1], index, source[index + 1 : close]))
            index = close + 1
        elif char.isalpha() or char == "_":
            index = _read_word(source, index, tokens)
        elif char in "(),":
            kind = {"(": Kind.OPEN, ")": Kind.CLOSE, ",": Kind.COMMA}[char]
            tokens.append(Token(kind, char, index))
            index += 1
        else:
            operator = next((op for op in OPERATORS if source.startswith(op, index)), None)
            if operator is None:
                raise Failure(f"unexpected character {char!r}{QUOTE_HINT}", start)
            tokens.append(Token(Kind.OPERATOR, operator, index))
            index += len(operator)
    tokens.append(Token(Kind.END, "", len(source)))
    return tokens


def _read_number(source: str, index: int, tokens: list[Token]) -> int:
    start = index
    if source.startswith(("0x", "0X"), index):
        index += 2
        while index < len(source) and source[index] in "0123456789abcdefABCDEF":
            index += 1
        text, value = source[start:index], None
        if len(text) > 2:
            value = float(int(text, 16))
    else:
        while index < len(source) and (source[index].isdigit() or source[index] == "."):
            index += 1
        text = source[start:index]
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None:
        raise Failure(f"cannot read {text!r} as a number{QUOTE_HINT}", start)
    if index < len(source) and (source[index].isalpha() or source[index] == "_"):
        raise Failure(f"unexpected {source[start : index + 1]!r}: a number followed by letters{QUOTE_HINT}", start)
    tokens.append(Token(Kind.VALUE, text, start, value))
    return index


def _read_string(source: str, index: int, tokens: list[Token]) -> int:
    quote, start = source[index], index
    index += 1
    out: list[str] = []
    while index < len(source) and source[index] != quote:
        if source[index] == "\\" and index + 1 < len(source):
            index += 1  # govaluate: a backslash makes the next character literal
        out.append(source[index])
        index += 1
    if index >= len(source):
        raise Failure("unclosed string literal", start)
    tokens.append(Token(Kind.VALUE, source[start : index + 1], start, "".join(out)))
    return index + 1


def _read_word(source: str, index: int, tokens: list[Token]) -> int:
    start = index
    while index < len(source):
        char = source[index]
        joins_hyphen = char == "-" and index + 1 < len(source) and _is_word_char(source[index + 1])
        if not (_is_word_char(char) or joins_hyphen):
            break
        index += 1
    word = source[start:index]
    if word in ("in", "IN"):
        tokens.append(Token(Kind.OPERATOR, "in", start))
    else:
        value: Any = {"true": True, "false": False}.get(word, word)
        tokens.append(Token(Kind.VALUE, word, start, value))
    return index


class WhenParser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.position = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.current
        if token.kind is not Kind.END:
            self.position += 1
        return token

    def unexpected(self, token: Token) -> Failure:
        if token.kind is Kind.END:
            return Failure("unexpected end of expression", token.offset)
        return Failure(f"unexpected {token.describe()}{QUOTE_HINT}", token.offset)

    def parse(self) -> Node:
        node = self.expression()
        if self.current.kind is not Kind.END:
            raise self.unexpected(self.current)
        check_tree_height(node)
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING_DEPTH:
            raise Failure(
                f"expression is nested too deeply (more than {MAX_NESTING_DEPTH} levels)", self.current.offset
            )

    def expression(self, min_level: int = 0) -> Node:
        """Precedence climbing over LEVELS; every binary operator is left-associative, as in govaluate."""
        left = self.prefix()
        while self.current.kind is Kind.OPERATOR:
            operator = self.current
            if operator.text in UNSUPPORTED:
                raise Failure(f"operator {operator.text!r} is not supported in when expressions", operator.offset)
            level = PRECEDENCE.get(operator.text)
            if level is None or level < min_level:
                break
            self.advance()
            right_starts_list = self.tokens[self.position].kind is Kind.OPEN
            right = self.expression(level + 1)
            if operator.text == "in" and right_starts_list and not isinstance(right, ArrayLiteral):
                right = ArrayLiteral(offset=right.offset, items=(right,))
            left = Binary(offset=operator.offset, operator=operator.text, left=left, right=right)
        return left

    def prefix(self) -> Node:
        token = self.current
        if token.kind is Kind.OPERATOR and token.text in ("!", "-"):
            self.advance()
            self.enter()
            operand = self.prefix()
            self.depth -= 1
            return Unary(offset=token.offset, operator=token.text, operand=operand)
        return self.value()

    def value(self) -> Node:
        token = self.advance()
        if token.kind is Kind.VALUE:
            return Literal(offset=token.offset, value=token.value)
        if token.kind is not Kind.OPEN:
            raise self.unexpected(token)
        self.enter()
        items = [self.expression()]
        while self.current.kind is Kind.COMMA:
            self.advance()
            items.append(self.expression())
        if self.current.kind is not Kind.CLOSE:
            raise self.unexpected(self.current)
        self.advance()
        self.depth -= 1
        return items[0] if len(items) == 1 else ArrayLiteral(offset=token.offset, items=tuple(items))


def parse_when(source: str) -> Node:
    """Parse a substituted `when` condition; raises Failure with the offset of the problem."""
    return WhenParser(source).parse()
