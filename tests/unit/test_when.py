"""`when` conditions with Argo's govaluate meaning (treadle.expr.evaluate_when).

The texts are what Argo hands govaluate: `{{...}}` tags already substituted.
"""

from __future__ import annotations

import re
import time

import pytest

from treadle.errors import TreadleError
from treadle.expr import ExpressionError, evaluate_when

HOLDS = [
    # bare words are strings, so coin-flip style conditions need no quotes
    "heads == heads",
    "tails != heads",
    "foo != bar",
    "'heads' == heads",
    '"heads" == heads',
    "heads == 'heads'",
    # substituted booleans and numbers
    "true == true",
    "true",
    "!false",
    "true != false",
    "5 > 3",
    "10 > 9",
    "5 == 5.0",
    "0.5 < 1",
    "-1 < 0",
    "2 >= 2",
    "2 <= 3",
    "0x10 == 16",
    ".5 == 0.5",
    # strings compare as text, numbers as numbers
    "'10' < '9'",
    "'abc' < 'abd'",
    "'5' != 5",
    # logic, precedence, grouping
    "true && true",
    "false || true",
    "true || false && false",
    "(true || false) && true",
    "!(heads == tails)",
    "heads == heads && tails == tails",
    "( heads == heads && tails == tails ) || ( heads == tails && tails == heads )",
    "1 + 2 * 3 == 7",
    "(1 + 2) * 3 == 9",
    "10 - 2 - 3 == 5",
    "2 ** 3 == 8",
    "7 % 3 == 1",
    "7.5 % 2 == 1.5",
    "1 / 2 == 0.5",
    "-2 + 5 == 3",
    # `+` joins a string with anything
    "'a' + 1 == 'a1'",
    "1 + 'b' == '1b'",
    "'x' + true == 'xtrue'",
    # regular expressions (unanchored, like Go's MatchString)
    "heads =~ 'ea'",
    "heads =~ '^h.*s$'",
    "tails !~ '^h'",
    "'v1.2.3' =~ '^v[0-9]+(\\\\.[0-9]+)*$'",
    # membership in a parenthesised list
    "heads in (heads, tails)",
    "3 in (1, 2, 3)",
    "5 IN (5)",
    "!(x in (a, b))",
    # ternary and coalescing
    "true ? true : false",
    "(false ? false : true)",
    "(1 > 2 ? 'big' : 'small') == small",
    "(false ? 1) ?? true",
    # hyphenated words are single strings (govaluate would subtract and fail)
    "tails-2 == tails-2",
    "my-step-name != other-step",
    "false-positive == false-positive",
    "a-1 in (a-1, b-2)",
    # dotted words, escaped-parameter brackets, backslash escapes
    "steps.flip.outputs.result == steps.flip.outputs.result",
    "[hello world] == 'hello world'",
    "'it\\'s' == \"it's\"",
    "'a\\\\b' == 'a\\\\b'",
    # whitespace and newlines are ignored
    "  heads\n  ==\theads  ",
    # an empty condition always holds
    "",
    "   ",
]

FAILS = [
    "heads == tails",
    "tails == heads",
    "false",
    "!true",
    "5 > 10",
    "'5' == 5",
    "true == 'true'",
    "true && false",
    "false || false",
    "heads in (tails, edge)",
    "heads =~ '^t'",
    "heads !~ 'ea'",
    "tails-2 == tails-3",
    "1 + 1 == 3",
    "(true ? false : true)",
    "2021-01-01 == '2021-01-01'",  # digits first: arithmetic in govaluate, 2019 != the string
]


@pytest.mark.parametrize("text", HOLDS)
def test_condition_holds(text: str) -> None:
    assert evaluate_when(text) is True


@pytest.mark.parametrize("text", FAILS)
def test_condition_does_not_hold(text: str) -> None:
    assert evaluate_when(text) is False


NOT_BOOLEAN = [
    ("1 + 4", "5"),
    ("heads", "'heads'"),
    ("2.5 * 2", "5"),
    ("'a' + 'b'", "'ab'"),
    ("(a, b)", '["a","b"]'),
    ("false ? true", "nil"),
]


@pytest.mark.parametrize(("text", "shown"), NOT_BOOLEAN)
def test_result_must_be_boolean(text: str, shown: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate_when(text)
    assert str(caught.value) == f"when expression {text!r} evaluated to {shown}, not a boolean"


ERRORS = [
    # (condition, part of the message, column or None)
    ("heads == ", "unexpected end of expression", 10),
    ("hello world == x", "unexpected 'world'", 7),
    ("== heads", "unexpected '=='", 1),
    ("(heads == heads", "unexpected end of expression", 16),
    ("heads == heads)", "unexpected ')'", 15),
    ("'unclosed == x", "unclosed string literal", 1),
    ("[unclosed == x", "unclosed '['", 1),
    ("{{steps.a.outputs.result}} == x", "unexpected character '{'", 1),
    ("a @ b", "unexpected character '@'", 3),
    ("3abc == 3abc", "a number followed by letters", 1),
    ("1.2.3 == 1.2.3", "cannot read '1.2.3' as a number", 1),
    ("heads > 5", "mismatched types string and float", 7),
    ("5 < heads", "mismatched types float and string", 3),
    ("tails - 2 == x", "invalid operation: 'tails' - 2", 7),
    ("heads && true", "needs a bool, not string 'heads'", 7),
    ("!heads", "needs a bool", 1),
    ("-heads == 1", "is not a number", 1),
    ("1 / 0 == 1", "division by zero", 3),
    ("heads in heads", "operator in not defined on string", 7),
    ("heads =~ '('", "invalid regular expression", 7),
    ("1 =~ '1'", "invalid operation: 1 =~ '1' (mismatched types float and string)", 3),
    ("x =~ '(a+)+$'", "exponential time", 3),
    ("1 & 1 == 1", "operator '&' is not supported", 3),
    ("1 << 2 == 4", "operator '<<' is not supported", 3),
    ("heads ? a : b", "needs a bool, not string 'heads'", 7),
]


@pytest.mark.parametrize(("text", "fragment", "column"), ERRORS)
def test_errors_quote_the_condition_and_say_where(text: str, fragment: str, column: int | None) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate_when(text)
    error = caught.value
    assert isinstance(error, TreadleError)
    assert str(error).startswith(f"when expression {text!r}: ")
    assert fragment in str(error)
    assert error.column == column
    assert error.expression == text


def test_syntax_errors_hint_at_quoting() -> None:
    with pytest.raises(ExpressionError, match="hint: wrap values with spaces or symbols in quotes"):
        evaluate_when("hello world == hello world")


def test_multi_line_conditions_report_the_line() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate_when("heads == heads &&\n  tails >")
    assert caught.value.line == 2
    assert "(line 2, column 10)" in str(caught.value)


HOSTILE = [
    ("(" * 200 + "true" + ")" * 200, "nested too deeply"),
    ("!" * 300 + "true", "nested too deeply"),
    ("true" + " && true" * 1200, "nested too deeply"),
    ("true" + " && true" * 1300, "too long"),
    ("1" + " + 1" * 400 + " == 1", "nested too deeply"),
    ("heads == " + "x" * 20_000, "too long"),
    ("'" + "a" * 40 + "!' =~ '^(a|aa)*$'", "exponential time"),
    ("x =~ '(\\\\1)'", "backreference"),
    ("x =~ '(?=x)'", "lookaround"),
    ("x =~ '" + "a" * 1_100 + "'", "regular expression too long"),
    ("__import__('os') == 1", "unexpected '('"),
    ("().__class__ == 1", "unexpected character '.'"),
]


@pytest.mark.parametrize(("text", "fragment"), HOSTILE)
def test_hostile_conditions_fail_cleanly_and_quickly(text: str, fragment: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        evaluate_when(text)
    assert time.monotonic() - started < 1.0


def test_moderate_nesting_is_fine() -> None:
    assert evaluate_when("(" * 60 + "heads == heads" + ")" * 60) is True
    assert evaluate_when("true" + " && true" * 150) is True
