"""A Pratt parser for the expr language, with expr-lang/expr's precedences.

    ternary  ?:                      (lowest, right-associative)
    |        pipe                    0
    or ||                            10
    and &&                           15
    == != < > <= >= in matches contains startsWith endsWith   20 (chains: a < b < c)
    ..                               25
    + -                              30
    * / %                            60
    not !  (unary)                   50, so `!a == b` is `(!a) == b` as in expr
    - +    (unary)                   90
    ** ^                             100 (right-associative)
    ??                               500
    member, index, slice, call       (postfix, tightest)

Calls are resolved here: an unknown function is a syntax error, like expr's
compile-time check. Only built-in functions can be called; `sprig.name(...)`
names a sprig function.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager

from treadle.expr.errors import Failure
from treadle.expr.functions import FUNCTIONS, PREDICATE_FUNCTIONS
from treadle.expr.lexer import Kind, Token, tokenize
from treadle.expr.limits import MAX_NESTING_DEPTH
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
    check_tree_height,
)

BINARY_PRECEDENCE = {
    "|": 0,
    "or": 10,
    "||": 10,
    "and": 15,
    "&&": 15,
    "==": 20,
    "!=": 20,
    "<": 20,
    ">": 20,
    "<=": 20,
    ">=": 20,
    "in": 20,
    "matches": 20,
    "contains": 20,
    "startsWith": 20,
    "endsWith": 20,
    "..": 25,
    "+": 30,
    "-": 30,
    "*": 60,
    "/": 60,
    "%": 60,
    "**": 100,
    "^": 100,
    "??": 500,
}
COMPARISON_PRECEDENCE = 20
RIGHT_ASSOCIATIVE = frozenset({"**", "^"})
UNARY_PRECEDENCE = {"not": 50, "!": 50, "-": 90, "+": 90}
NEGATABLE = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
LITERAL_WORDS = {"true": True, "false": False, "nil": None}


class Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.position = 0
        self.depth = 0
        self.predicate_depth = 0

    # ------------------------------------------------------------ token helpers

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def peek(self) -> Token:
        return self.tokens[min(self.position + 1, len(self.tokens) - 1)]

    def at_end(self) -> bool:
        return self.current.kind is Kind.EOF

    def advance(self) -> Token:
        token = self.current
        if token.kind is not Kind.EOF:
            self.position += 1
        return token

    def unexpected(self, token: Token | None = None) -> Failure:
        token = token or self.current
        if token.kind is Kind.EOF:
            return Failure("unexpected end of expression", token.offset)
        return Failure(f"unexpected token {token.describe()}", token.offset)

    def expect_operator(self, text: str) -> Token:
        if not self.current.is_operator(text):
            raise self.unexpected()
        return self.advance()

    def expect_bracket(self, text: str) -> Token:
        if not self.current.is_bracket(text):
            raise self.unexpected()
        return self.advance()

    @contextmanager
    def nested(self) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_NESTING_DEPTH:
            raise Failure(
                f"expression is nested too deeply (more than {MAX_NESTING_DEPTH} levels)", self.current.offset
            )
        try:
            yield
        finally:
            self.depth -= 1

    # ------------------------------------------------------------ grammar

    def parse(self) -> Node:
        if self.current.kind is Kind.EOF:
            raise Failure("empty expression", 0)
        node = self.expression(0)
        if not self.at_end():
            raise self.unexpected()
        check_tree_height(node)
        return node

    def expression(self, min_precedence: int) -> Node:
        with self.nested():
            if min_precedence == 0 and self.current.is_operator("let"):
                return self.let()
            left = self.primary()
            while self.current.kind is Kind.OPERATOR:
                operator_token = self.current
                negated = False
                if operator_token.is_operator("not"):
                    following = self.peek()
                    if not (following.is_operator() and following.text in NEGATABLE):
                        raise self.unexpected(following)
                    if BINARY_PRECEDENCE[following.text] < min_precedence:
                        break
                    self.advance()
                    operator_token, negated = following, True
                precedence = BINARY_PRECEDENCE.get(operator_token.text)
                if precedence is None or precedence < min_precedence:
                    break
                self.advance()
                left = self.binary(left, operator_token, precedence)
                if negated:
                    left = Unary(offset=operator_token.offset, operator="not", operand=left)
            if min_precedence == 0:
                left = self.conditional(left)
            return left

    def binary(self, left: Node, operator: Token, precedence: int) -> Node:
        if operator.text == "|":
            name_token = self.advance()
            if name_token.kind is not Kind.IDENTIFIER:
                raise self.unexpected(name_token)
            name = self.qualified_name(name_token)
            return self.call(name, name_token.offset, [left])
        if precedence == COMPARISON_PRECEDENCE:
            return self.comparison_chain(left, operator)
        right_precedence = precedence if operator.text in RIGHT_ASSOCIATIVE else precedence + 1
        right = self.expression(right_precedence)
        return Binary(offset=operator.offset, operator=operator.text, left=left, right=right)

    def comparison_chain(self, left: Node, operator: Token) -> Node:
        """`a < b < c` means `a < b && b < c`, as in expr."""
        chain: Node | None = None
        while True:
            right = self.expression(COMPARISON_PRECEDENCE + 1)
            comparison = Binary(offset=operator.offset, operator=operator.text, left=left, right=right)
            chain = (
                comparison
                if chain is None
                else Binary(offset=operator.offset, operator="&&", left=chain, right=comparison)
            )
            if not (self.current.is_operator() and BINARY_PRECEDENCE.get(self.current.text) == COMPARISON_PRECEDENCE):
                return chain
            left, operator = right, self.advance()

    def conditional(self, condition: Node) -> Node:
        while self.current.is_operator("?"):
            question = self.advance()
            if self.current.is_operator(":"):  # `a ?: b` keeps a when it is true
                self.advance()
                when_true = condition
            else:
                when_true = self.expression(0)
                self.expect_operator(":")
            when_false = self.expression(0)
            condition = Conditional(
                offset=question.offset, condition=condition, when_true=when_true, when_false=when_false
            )
        return condition

    def let(self) -> Node:
        self.advance()
        name = self.advance()
        if name.kind is not Kind.IDENTIFIER:
            raise self.unexpected(name)
        self.expect_operator("=")
        value = self.expression(0)
        self.expect_operator(";")
        body = self.expression(0)
        return Let(offset=name.offset, name=name.text, value=value, body=body)

    def primary(self) -> Node:
        token = self.current
        if token.kind is Kind.OPERATOR and token.text in UNARY_PRECEDENCE:
            self.advance()
            operand = self.expression(UNARY_PRECEDENCE[token.text])
            return self.postfix(Unary(offset=token.offset, operator=token.text, operand=operand))
        if token.is_bracket("("):
            self.advance()
            inner = self.expression(0)
            self.expect_bracket(")")
            return self.postfix(inner)
        if token.kind is Kind.POINTER or token.is_operator("."):
            return self.pointer()
        return self.secondary()

    def pointer(self) -> Node:
        token = self.advance()
        if self.predicate_depth == 0:
            raise Failure("cannot use pointer accessor outside predicate", token.offset)
        if token.kind is Kind.POINTER:
            if token.text not in ("", "index", "acc"):
                raise Failure(f"unknown pointer #{token.text}", token.offset)
            return self.postfix(Pointer(offset=token.offset, name=token.text))
        # `.field` is shorthand for `#.field`
        name = self.advance()
        if name.kind not in (Kind.IDENTIFIER, Kind.OPERATOR) or not name.text.isidentifier():
            raise self.unexpected(name)
        element = Pointer(offset=token.offset, name="")
        return self.postfix(
            Member(offset=name.offset, target=element, key=Literal(offset=name.offset, value=name.text))
        )

    def secondary(self) -> Node:
        token = self.advance()
        node: Node
        if token.kind is Kind.IDENTIFIER:
            if token.text in LITERAL_WORDS:
                return Literal(offset=token.offset, value=LITERAL_WORDS[token.text])
            if self.current.is_bracket("(") or self.is_sprig_call(token):
                node = self.call(self.qualified_name(token), token.offset, [])
            else:
                node = Identifier(offset=token.offset, name=token.text)
        elif token.kind in (Kind.NUMBER, Kind.STRING):
            node = Literal(offset=token.offset, value=token.value)
        elif token.is_bracket("["):
            node = self.array(token)
        elif token.is_bracket("{"):
            node = self.map(token)
        else:
            raise self.unexpected(token)
        return self.postfix(node)

    def is_sprig_call(self, name: Token) -> bool:
        """At `sprig` `.` `name` `(`?"""
        following = self.tokens[self.position + 1 : self.position + 3]
        return (
            name.text == "sprig"
            and self.current.is_operator(".")
            and len(following) == 2
            and following[0].kind in (Kind.IDENTIFIER, Kind.OPERATOR)  # sprig.contains: a word operator
            and following[0].text.isidentifier()
            and following[1].is_bracket("(")
        )

    def qualified_name(self, name: Token) -> str:
        """`sprig` `.` `trim` read as one function name when a call follows."""
        if self.is_sprig_call(name):
            self.advance()
            return "sprig." + self.advance().text
        return name.text

    def call(self, name: str, offset: int, leading: list[Node]) -> Node:
        if name in PREDICATE_FUNCTIONS:
            return self.predicate_call(name, offset, leading)
        if name not in FUNCTIONS:
            raise Failure(f"unknown function {name!r}{_suggestion(name)}", offset)
        self.expect_bracket("(")
        args = list(leading)
        with self.nested():
            while not self.current.is_bracket(")"):
                if len(args) > len(leading):
                    self.expect_operator(",")
                    if self.current.is_bracket(")"):
                        break
                args.append(self.expression(0))
        self.expect_bracket(")")
        try:
            FUNCTIONS[name].check_arity(len(args))
        except Failure as failure:
            raise Failure(failure.reason, offset) from None
        return self.postfix(Call(offset=offset, name=name, args=tuple(args)))

    def predicate_call(self, name: str, offset: int, leading: list[Node]) -> Node:
        fewest, most = PREDICATE_FUNCTIONS[name]
        self.expect_bracket("(")
        args = list(leading)
        with self.nested():
            while not self.current.is_bracket(")") and len(args) < most:
                if len(args) > len(leading):
                    self.expect_operator(",")
                    if self.current.is_bracket(")"):
                        break
                args.append(self.predicate() if len(args) == 1 else self.expression(0))
            if self.current.is_operator(","):
                self.advance()
        self.expect_bracket(")")
        if len(args) < fewest:
            raise Failure(f"{name} takes at least {fewest} arguments, not {len(args)}", offset)
        return self.postfix(Call(offset=offset, name=name, args=tuple(args)))

    def predicate(self) -> Node:
        start = self.current
        braced = start.is_bracket("{")
        if braced:
            self.advance()
        self.predicate_depth += 1
        try:
            body = self.expression(0)
        finally:
            self.predicate_depth -= 1
        if braced:
            self.expect_bracket("}")
        return Predicate(offset=start.offset, body=body)

    def array(self, opening: Token) -> Node:
        items: list[Node] = []
        with self.nested():
            while not self.current.is_bracket("]"):
                if items:
                    self.expect_operator(",")
                    if self.current.is_bracket("]"):
                        break
                items.append(self.expression(0))
        self.expect_bracket("]")
        return ArrayLiteral(offset=opening.offset, items=tuple(items))

    def map(self, opening: Token) -> Node:
        entries: list[tuple[Node, Node]] = []
        with self.nested():
            while not self.current.is_bracket("}"):
                if entries:
                    self.expect_operator(",")
                    if self.current.is_bracket("}"):
                        break
                entries.append((self.map_key(), self.map_value()))
        self.expect_bracket("}")
        return MapLiteral(offset=opening.offset, entries=tuple(entries))

    def map_key(self) -> Node:
        token = self.current
        if token.kind in (Kind.IDENTIFIER, Kind.NUMBER, Kind.STRING):
            self.advance()
            # expr turns every bare key into a string: `{1: x}` has the key "1"
            key = token.value if token.kind is Kind.STRING else token.text
            return Literal(offset=token.offset, value=key)
        if token.is_bracket("("):
            return self.expression(0)
        raise Failure(
            "a map key must be a quoted string, a number, an identifier, or an expression in parentheses"
            f" (unexpected token {token.describe()})",
            token.offset,
        )

    def map_value(self) -> Node:
        self.expect_operator(":")
        return self.expression(0)

    def postfix(self, node: Node) -> Node:
        optional_chain = False
        while True:
            token = self.current
            if token.is_operator(".", "?."):
                optional_chain |= token.text == "?."
                self.advance()
                if token.text == "?." and self.current.is_bracket("["):
                    node = self.index(node, optional=True)
                    continue
                name = self.advance()
                if name.kind not in (Kind.IDENTIFIER, Kind.OPERATOR) or not name.text.isidentifier():
                    raise Failure("expected a name after '.'", name.offset)
                if self.current.is_bracket("("):
                    raise Failure(
                        f"cannot call method {name.text!r}: only built-in functions can be called", name.offset
                    )
                key = Literal(offset=name.offset, value=name.text)
                node = Member(offset=name.offset, target=node, key=key, optional=optional_chain)
            elif token.is_bracket("["):
                node = self.index(node, optional=optional_chain)
            elif token.is_bracket("(") and not isinstance(node, Call):
                raise Failure("only built-in functions can be called", token.offset)
            else:
                return node

    def index(self, target: Node, *, optional: bool) -> Node:
        opening = self.expect_bracket("[")
        with self.nested():
            start: Node | None = None
            if not self.current.is_operator(":"):
                start = self.expression(0)
                if self.current.is_bracket("]"):
                    self.advance()
                    return Member(offset=opening.offset, target=target, key=start, optional=optional)
            self.expect_operator(":")
            end = None if self.current.is_bracket("]") else self.expression(0)
        self.expect_bracket("]")
        return Slice(offset=opening.offset, target=target, start=start, end=end)


_SPRIG_NAMES = frozenset(name.removeprefix("sprig.") for name in FUNCTIONS if name.startswith("sprig."))
_CORE_NAMES_BY_LOWER_CASE = {
    name.lower(): name for name in sorted([*FUNCTIONS, *PREDICATE_FUNCTIONS]) if not name.startswith("sprig.")
}


def _suggestion(name: str) -> str:
    """A hint for an unknown function: a near miss of a built-in (fromJson -> fromJSON), or the sprig spelling."""
    close = difflib.get_close_matches(name.lower(), list(_CORE_NAMES_BY_LOWER_CASE), n=1, cutoff=0.75)
    if close:
        return f" (did you mean {_CORE_NAMES_BY_LOWER_CASE[close[0]]}?)"
    if name in _SPRIG_NAMES:
        return f" (sprig functions are called as sprig.{name}(...))"
    return ""


def parse(source: str) -> Node:
    """Parse an expr-language expression; raises Failure with the offset of the problem."""
    return Parser(source).parse()
