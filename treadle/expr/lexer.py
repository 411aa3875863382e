"""Tokens of the expr language (Argo's `{{=...}}` tags).

Follows expr-lang/expr's lexer: numbers with `_` separators and 0x/0o/0b
prefixes, strings in single or double quotes with Go escapes, raw strings in
backticks, `//` and `/* */` comments, word operators (`and`, `in`, `matches`,
...), and `#`, `#index`, `#acc` inside predicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from treadle.expr.errors import Failure
from treadle.expr.values import INT64_MAX


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    IDENTIFIER = "identifier"
    OPERATOR = "operator"
    BRACKET = "bracket"
    POINTER = "pointer"  # `#name`; text is the name ("" for a bare `#`)
    EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    offset: int
    value: Any = None  # the number or the decoded string

    def is_operator(self, *texts: str) -> bool:
        return self.kind is Kind.OPERATOR and (not texts or self.text in texts)

    def is_bracket(self, text: str) -> bool:
        return self.kind is Kind.BRACKET and self.text == text

    def describe(self) -> str:
        return "end of expression" if self.kind is Kind.EOF else repr(self.text)


WORD_OPERATORS = frozenset({"in", "and", "or", "not", "matches", "contains", "startsWith", "endsWith", "let"})
TWO_CHAR_OPERATORS = frozenset({"==", "!=", "<=", ">=", "&&", "||", "**", "??", "?.", ".."})
ONE_CHAR_OPERATORS = frozenset("+-*/%^<>!?:,;.|=")
SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
SIMPLE_ESCAPES.update({"\\": "\\", "'": "'", '"': '"'})
UNICODE_ESCAPE_LENGTHS = {"x": 2, "u": 4, "U": 8}


def is_identifier_start(char: str) -> bool:
    return char != "" and (char.isalpha() or char in "_$")


def is_identifier_char(char: str) -> bool:
    return char != "" and (char.isalnum() or char in "_$")


class Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.index = 0
        self.tokens: list[Token] = []

    def tokenize(self) -> list[Token]:
        while self._skip_space_and_comments():
            self._read_token()
        self.tokens.append(Token(Kind.EOF, "", len(self.source)))
        return self.tokens

    def _peek(self, ahead: int = 0) -> str:
        position = self.index + ahead
        return self.source[position] if position < len(self.source) else ""

    def _skip_space_and_comments(self) -> bool:
        """Advance past blanks and comments; False at the end of the text."""
        while self.index < len(self.source):
            char = self._peek()
            if char.isspace():
                self.index += 1
            elif char == "/" and self._peek(1) == "/":
                newline = self.source.find("\n", self.index)
                self.index = len(self.source) if newline == -1 else newline + 1
            elif char == "/" and self._peek(1) == "*":
                close = self.source.find("*/", self.index + 2)
                if close == -1:
                    raise Failure("unclosed comment", self.index)
                self.index = close + 2
            else:
                return True
        return False

    def _emit(self, kind: Kind, text: str, start: int, value: Any = None) -> None:
        self.tokens.append(Token(kind, text, start, value))

    def _read_token(self) -> None:
        start, char = self.index, self._peek()
        if char.isdigit() or (char == "." and self._peek(1).isdigit()):
            self._read_number()
        elif char in "'\"":
            value = self._read_quoted(char)
            self._emit(Kind.STRING, self.source[start : self.index], start, value)
        elif char == "`":
            close = self.source.find("`", start + 1)
            if close == -1:
                raise Failure("unterminated raw string", start)
            self.index = close + 1
            self._emit(Kind.STRING, self.source[start : self.index], start, self.source[start + 1 : close])
        elif char == "#":
            self.index += 1
            while is_identifier_char(self._peek()):
                self.index += 1
            self._emit(Kind.POINTER, self.source[start + 1 : self.index], start)
        elif is_identifier_start(char):
            while is_identifier_char(self._peek()):
                self.index += 1
            word = self.source[start : self.index]
            self._emit(Kind.OPERATOR if word in WORD_OPERATORS else Kind.IDENTIFIER, word, start)
        elif char in "()[]{}":
            self.index += 1
            self._emit(Kind.BRACKET, char, start)
        elif self.source[start : start + 2] in TWO_CHAR_OPERATORS:
            self.index += 2
            self._emit(Kind.OPERATOR, self.source[start : self.index], start)
        elif char in ONE_CHAR_OPERATORS:
            self.index += 1
            self._emit(Kind.OPERATOR, char, start)
        else:
            raise Failure(f"unexpected character {char!r}", start)

    def _read_digits(self, digits: str) -> None:
        while self._peek() and self._peek() in digits:
            self.index += 1

    def _read_number(self) -> None:
        start = self.index
        radix_digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}
        prefix = self.source[start : start + 2].lower()
        is_radix = prefix[:1] == "0" and prefix[1:] in radix_digits
        if is_radix:
            self.index += 2
            self._read_digits(radix_digits[prefix[1]])
        else:
            self._read_digits("0123456789_")
            # `1..3` is a range, not the float `1.` followed by `.3`
            if self._peek() == "." and self._peek(1) != ".":
                self.index += 1
                self._read_digits("0123456789_")
            if self._peek() in ("e", "E"):
                self.index += 1
                if self._peek() in ("+", "-"):
                    self.index += 1
                self._read_digits("0123456789_")
        text = self.source[start : self.index]
        if is_identifier_char(self._peek()):
            raise Failure(f"bad number syntax: {self.source[start : self.index + 1]!r}", start)
        self._emit(Kind.NUMBER, text, start, parse_number(text, start))

    def _read_quoted(self, quote: str) -> str:
        start = self.index
        self.index += 1
        out: list[str] = []
        while True:
            if self.index >= len(self.source):
                raise Failure("unterminated string", start)
            char = self.source[self.index]
            if char == quote:
                self.index += 1
                return "".join(out)
            if char == "\\":
                out.append(self._read_escape())
            else:
                out.append(char)
                self.index += 1

    def _read_escape(self) -> str:
        """Decode the escape at self.index (a backslash), as Go's strconv.Unquote does."""
        start = self.index
        code = self._peek(1)
        if code in SIMPLE_ESCAPES:
            self.index += 2
            return SIMPLE_ESCAPES[code]
        if code in UNICODE_ESCAPE_LENGTHS:
            digits_start, length, base = start + 2, UNICODE_ESCAPE_LENGTHS[code], 16
        elif code and code in "01234567":
            digits_start, length, base = start + 1, 3, 8  # `\101`: three octal digits
        else:
            raise Failure(f"invalid escape sequence '\\{code}'", start)
        digits = self.source[digits_start : digits_start + length]
        self.index = digits_start + length
        try:
            if len(digits) != length:
                raise ValueError(digits)
            code_point = int(digits, base)
            # Go decodes a surrogate half to the replacement character; so do we, to keep strings valid UTF-8.
            return "\ufffd" if 0xD800 <= code_point <= 0xDFFF else chr(code_point)
        except ValueError:
            raise Failure(f"invalid escape sequence {self.source[start : self.index]!r}", start) from None


def parse_number(text: str, offset: int) -> int | float:
    digits = text.replace("_", "")
    lowered = digits.lower()
    try:
        if lowered[:2] in ("0x", "0o", "0b"):
            number: int | float = int(digits, 0)
        elif "." in lowered or "e" in lowered:
            number = float(digits)
        else:
            number = int(digits, 10)
    except ValueError:
        raise Failure(f"invalid number literal {text!r}", offset) from None
    if isinstance(number, int) and number > INT64_MAX:
        raise Failure(f"integer literal {text!r} is too large", offset)
    if isinstance(number, float) and number == float("inf"):
        raise Failure(f"float literal {text!r} is too large", offset)
    return number


def tokenize(source: str) -> list[Token]:
    return Lexer(source).tokenize()
