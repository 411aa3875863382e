"""Expression tags `{{=...}}` in the expr language with Argo's functions (treadle.expr.evaluate)."""

from __future__ import annotations

import ast
import math
import pickle
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from treadle.errors import TreadleError
from treadle.expr import ExpressionError, env_from_flat, evaluate, render

EXPR_PACKAGE = Path(__file__).resolve().parents[2] / "treadle" / "expr"

# The environment Argo would build for a step in a loop, after a DAG task and a retry.
FLAT = {
    "inputs.parameters.count": "3",
    "inputs.parameters.ratio": "0.25",
    "inputs.parameters.my-param": "hello",
    "inputs.parameters.flag": "true",
    "inputs.parameters.json": '{"a": {"b": [1, 2, 3]}, "name": "x"}',
    "inputs.parameters": '[{"name": "count", "value": "3"}]',  # dropped: its children win
    "steps.flip.outputs.result": "heads",
    "steps.my-step.outputs.result": "tails",
    "tasks.gen.outputs.parameters.list": '["a", "b"]',
    "workflow.name": "wf-abc",
    "workflow.status": "Failed",
    "workflow.failures": '[{"displayName": "step-a", "message": "boom", "phase": "Failed"}]',
    "workflow.parameters.json": '[{"name": "should-print", "value": "true"}]',
    "retries": "2",
    "lastRetry.exitCode": "1",
    "item": {"name": "alpha", "size": 10, "tags": ["x", "y"]},
    "nothing": None,
}
ENV = env_from_flat(FLAT)

CASES: list[tuple[str, Any]] = [
    # literals
    ("1", 1),
    ("1.5", 1.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("1_000", 1000),
    ("0x1F", 31),
    ("0o17", 15),
    ("0b101", 5),
    ("'single'", "single"),
    ('"double"', "double"),
    ('"tab\\tnew\\nline"', "tab\tnew\nline"),
    ('"\\u00e9\\x41\\101"', "éAA"),
    ("`raw \\n text`", "raw \\n text"),
    ("true", True),
    ("false", False),
    ("nil", None),
    ("[1, 2]", [1, 2]),
    ("[1, 'a', [true]]", [1, "a", [True]]),
    ("[1, 2,]", [1, 2]),
    ("{a: 1, 'b-c': 2, \"d\": 3}", {"a": 1, "b-c": 2, "d": 3}),
    ("{1: 'one'}", {"1": "one"}),
    ("{(1 + 1): 'two'}", {2: "two"}),
    ("{}", {}),
    ("1 // a comment", 1),
    ("/* block */ 2", 2),
    # arithmetic: ints stay ints, `/` and `**` give floats
    ("1 + 2", 3),
    ("1 + 2.5", 3.5),
    ("7 - 10", -3),
    ("6 * 7", 42),
    ("7 / 2", 3.5),
    ("4 / 2", 2.0),
    ("7 % 3", 1),
    ("-7 % 3", -1),
    ("7 % -3", 1),
    ("2 ** 10", 1024.0),
    ("2 ^ 3", 8.0),
    ("2 ** 3 ** 2", 512.0),
    ("-2 ** 2", -4.0),
    ("-(2 + 3)", -5),
    ("+5", 5),
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("'con' + 'cat'", "concat"),
    ("[1] + [2, 3]", [1, 2, 3]),
    # comparisons and logic
    ("1 == 1.0", True),
    ("1 != 2", True),
    ("'a' == 'a'", True),
    ("'1' == 1", False),
    ("nil == nil", True),
    ("nil == false", False),
    ("[1, 2] == [1, 2]", True),
    ("{a: 1} == {a: 1}", True),
    ("1 < 2", True),
    ("2 >= 2.0", True),
    ("'abc' < 'abd'", True),
    ("1 < 2 < 3", True),
    ("3 > 2 > 2", False),
    ("true && false", False),
    ("true and true", True),
    ("false || true", True),
    ("false or false", False),
    ("!true", False),
    ("not false", True),
    ("!true == false", True),
    ("false && (1 / 0 > 0)", False),
    ("true || (1 / 0 > 0)", True),
    # membership and string operators
    ("2 in [1, 2, 3]", True),
    ("2.0 in [1, 2]", True),
    ("'a' in {a: 1}", True),
    ("'z' in {a: 1}", False),
    ("1 in nil", False),
    ("4 not in [1, 2]", True),
    ("'ell' in ['hello']", False),
    ("'hello' contains 'ell'", True),
    ("'hello' startsWith 'he'", True),
    ("'hello' endsWith 'lo'", True),
    ("'hello' not contains 'z'", True),
    ("'hello' matches '^h.l+o$'", True),
    ("'hello' matches 'ell'", True),
    ("'hello' not matches '^x'", True),
    # ternary and nil coalescing
    ("true ? 'y' : 'n'", "y"),
    ("1 > 2 ? 'y' : 'n'", "n"),
    ("false ? 1 : true ? 2 : 3", 2),
    ("nil ?? 'default'", "default"),
    ("'set' ?? 'default'", "set"),
    ("inputs.parameters.missing ?? 'default'", "default"),
    ("{a: 1}.b ?? 5", 5),
    ("nothing?.a", None),
    ("nothing?.a.b", None),
    ("nothing?.['a']", None),
    ("{a: nil}.a?.b", None),
    # member access, indexes and slices
    ("inputs.parameters.count", "3"),
    ("inputs.parameters['my-param']", "hello"),
    ('inputs.parameters["my-param"]', "hello"),
    ("steps.flip.outputs.result", "heads"),
    ("steps['my-step'].outputs.result", "tails"),
    ("item.name", "alpha"),
    ("item['size'] * 2", 20),
    ("item.tags[0]", "x"),
    ("item.tags[-1]", "y"),
    ("[1, 2, 3, 4, 5][1:3]", [2, 3]),
    ("[1, 2, 3, 4, 5][:2]", [1, 2]),
    ("[1, 2, 3, 4, 5][3:]", [4, 5]),
    ("[1, 2, 3, 4, 5][1:-1]", [2, 3, 4]),
    ("[1, 2, 3][:]", [1, 2, 3]),
    ("[1, 2, 3][5:9]", []),
    ("'hello'[1:3]", "el"),
    ("'hello'[0]", "h"),
    ("1..4", [1, 2, 3, 4]),
    ("3..1", []),
    ("$env.workflow.name", "wf-abc"),
    ("'workflow' in $env", True),
    ("let x = 2; x * x", 4),
    ("let x = 2; let y = x + 1; x * y", 6),
    # Argo's documented examples, in our own words
    ("[1, 2]", [1, 2]),
    ("filter([1, 2], { # > 1})", [2]),
    ("map([1, 2], { # * 2 })", [2, 4]),
    ("asInt(inputs.parameters.count) + 1", 4),
    ("asFloat(inputs.parameters.ratio) * 4", 1.0),
    ("string(1)", "1"),
    ("toJson([1, 2])", "[1,2]"),
    ("jsonpath(inputs.parameters.json, '$.a.b[1]')", 2.0),
    ("sprig.trim('  padded  ')", "padded"),
    ("inputs.parameters['my-param'] == 'hello'", True),
    ("asInt(lastRetry.exitCode) >= 2", False),
    ("lastRetry.exitCode != '2'", True),
    ("asInt(retries) < 3", True),
    ("workflow.status == 'Failed'", True),
    ("jsonpath(workflow.failures, '$[0].message')", "boom"),
    ("jsonpath(workflow.parameters.json, '$[0].value') == 'true'", True),
    ("fromJSON(tasks.gen.outputs.parameters.list)", ["a", "b"]),
    # predicates: `#`, `.field`, `#index`, `#acc`, optional braces
    ("filter([1, 2, 3, 4], # % 2 == 0)", [2, 4]),
    ("map([{n: 'a'}, {n: 'b'}], .n)", ["a", "b"]),
    ("filter([{v: 1}, {v: 5}], {.v > 2})", [{"v": 5}]),
    ("map(['a', 'b'], #index)", [0, 1]),
    ("map([[1, 2], [3]], {map(#, {# * 10})})", [[10, 20], [30]]),
    ("all([1, 2], # > 0)", True),
    ("all([], # > 0)", True),
    ("any([1, 2], # > 1)", True),
    ("any([], # > 1)", False),
    ("none([1, 2], # > 2)", True),
    ("one([1, 2], # > 1)", True),
    ("one([2, 2], # > 1)", False),
    ("count([1, 2, 3], # > 1)", 2),
    ("count([true, false, true])", 2),
    ("sum([1, 2, 3])", 6),
    ("sum([1, 2.5])", 3.5),
    ("sum([1, 2], # * 10)", 30),
    ("find([1, 2, 3], # > 1)", 2),
    ("find([1, 2, 3], # > 5)", None),
    ("findIndex([1, 2, 3], # > 1)", 1),
    ("findLast([1, 2, 3], # > 1)", 3),
    ("findLastIndex([1, 2, 3], # > 5)", -1),
    ("groupBy([1, 2, 3, 4], # % 2 == 0)", {False: [1, 3], True: [2, 4]}),
    ("sortBy([{a: 2}, {a: 1}], .a)", [{"a": 1}, {"a": 2}]),
    ("sortBy([{a: 2}, {a: 1}], .a, 'desc')", [{"a": 2}, {"a": 1}]),
    ("reduce(1..4, #acc + #)", 10),
    ("reduce(1..4, #acc + #, 100)", 110),
    ("[1, 2, 3] | filter(# > 1) | map(# * 2)", [4, 6]),
    ("'Hello' | lower()", "hello"),
    ("'a,b' | split(',') | join('-')", "a-b"),
    # conversions
    ("int('42')", 42),
    ("int('-7')", -7),
    ("int(3.9)", 3),
    ("int(-3.9)", -3),
    ("float('1.5')", 1.5),
    ("float('1e3')", 1000.0),
    ("float(2)", 2.0),
    ("asInt('08')", 8),
    ("string(1.0)", "1"),
    ("string(true)", "true"),
    ("string(nil)", "<nil>"),
    ("string([1, 'a'])", '[1,"a"]'),
    ("type(1)", "int"),
    ("type(1.0)", "float"),
    ("type('')", "string"),
    ("type([])", "array"),
    ("type({})", "map"),
    ("type(nil)", "nil"),
    ("toJSON({b: 1, a: [1.0, 2.5, nil, true]})", '{"a":[1,2.5,null,true],"b":1}'),
    ("toJSON('<a & b>')", '"\\u003ca \\u0026 b\\u003e"'),
    ("toJSON(1e21)", "1e+21"),
    ("toJSON(0.0000001)", "1e-7"),
    ("toJSON(100000000.0)", "100000000"),
    ('fromJSON(\'{"a": [1, "x"]}\')', {"a": [1.0, "x"]}),
    ("toBase64('hi')", "aGk="),
    ("fromBase64('aGk=')", "hi"),
    # string functions
    ("len('héllo')", 5),
    ("len([1, 2])", 2),
    ("len({a: 1})", 1),
    ("upper('abc')", "ABC"),
    ("lower('ABC')", "abc"),
    ("trim('  x  ')", "x"),
    ("trim('__x__', '_')", "x"),
    ("trimPrefix('prefix-x', 'prefix-')", "x"),
    ("trimSuffix('x.txt', '.txt')", "x"),
    ("hasPrefix('abc', 'ab')", True),
    ("hasSuffix('abc', 'bc')", True),
    ("split('a,b,c', ',')", ["a", "b", "c"]),
    ("split('a,b,c', ',', 2)", ["a", "b,c"]),
    ("split('abc', '')", ["a", "b", "c"]),
    ("replace('aXbX', 'X', '-')", "a-b-"),
    ("repeat('ab', 3)", "ababab"),
    ("indexOf('hello', 'l')", 2),
    ("lastIndexOf('hello', 'l')", 3),
    ("join(['a', 'b'], ', ')", "a, b"),
    ("join(['a', 'b'])", "ab"),
    # number and array functions
    ("max(1, 5, 3)", 5),
    ("max([1, 2.5])", 2.5),
    ("min(4, 2)", 2),
    ("abs(-3)", 3),
    ("ceil(1.2)", 2.0),
    ("floor(-1.2)", -2.0),
    ("round(2.5)", 3.0),
    ("round(-2.5)", -3.0),
    ("round(0.49999999999999994)", 0.0),
    ("mean([1, 2, 3, 4])", 2.5),
    ("median([3, 1, 2])", 2.0),
    ("first([1, 2])", 1),
    ("last([1, 2])", 2),
    ("first([])", None),
    ("take([1, 2, 3], 2)", [1, 2]),
    ("reverse([1, 2, 3])", [3, 2, 1]),
    ("uniq([1, 2, 1, 'a', 'a'])", [1, 2, "a"]),
    ("concat([1], [2], [3])", [1, 2, 3]),
    ("flatten([1, [2, [3, [4]]]])", [1, 2, 3, 4]),
    ("sort([3, 1, 2])", [1, 2, 3]),
    ("sort(['b', 'a'], 'desc')", ["b", "a"]),
    ("keys({a: 1, b: 2})", ["a", "b"]),
    ("values({a: 1, b: 2})", [1, 2]),
    ("toPairs({a: 1})", [["a", 1]]),
    ("fromPairs([['a', 1]])", {"a": 1}),
    ("get([1, 2], 5)", None),
    ("get([1, 2], -1)", 2),
    ("get({a: 1}, 'a')", 1),
    # safety: Python internals are just missing keys, never attributes
    ("item.__class__", None),
    ("item['__class__']", None),
    ("{}.__globals__ ?? 'safe'", "safe"),
    ("$env.__builtins__ ?? 'safe'", "safe"),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_evaluates(expression: str, expected: Any) -> None:
    result = evaluate(expression, ENV)
    assert result == expected
    assert type(result) is type(expected)


SPRIG_CASES: list[tuple[str, Any]] = [
    ("sprig.upper('abc')", "ABC"),
    ("sprig.lower('ABC')", "abc"),
    ("sprig.title('hello world')", "Hello World"),
    ("sprig.trim('  x ')", "x"),
    ("sprig.trimAll('$', '$5.00$')", "5.00"),
    ("sprig.trimPrefix('v', 'v1.2')", "1.2"),
    ("sprig.trimSuffix('.txt', 'a.txt')", "a"),
    ("sprig.contains('ell', 'hello')", True),
    ("sprig.hasPrefix('he', 'hello')", True),
    ("sprig.hasSuffix('lo', 'hello')", True),
    ("sprig.replace('a', 'o', 'banana')", "bonono"),
    ("sprig.repeat(3, 'ab')", "ababab"),
    ("sprig.substr(1, 3, 'hello')", "el"),
    ("sprig.trunc(3, 'hello')", "hel"),
    ("sprig.trunc(-2, 'hello')", "lo"),
    ("sprig.nospace('a b\\tc')", "abc"),
    ("sprig.quote('a', 1)", '"a" "1"'),
    ("sprig.quote('say \"hi\"')", '"say \\"hi\\""'),
    ("sprig.squote('a', nil, 'b')", "'a' 'b'"),
    ("sprig.cat('a', 1, nil, true)", "a 1 true"),
    ("sprig.indent(2, 'a\\nb')", "  a\n  b"),
    ("sprig.default('fallback', '')", "fallback"),
    ("sprig.default('fallback', nil)", "fallback"),
    ("sprig.default('fallback', 0)", "fallback"),
    ("sprig.default('fallback', 'set')", "set"),
    ("sprig.default('d', inputs.parameters.missing)", "d"),
    ("sprig.empty('')", True),
    ("sprig.empty([])", True),
    ("sprig.empty(false)", True),
    ("sprig.empty('x')", False),
    ("sprig.coalesce('', nil, 'c')", "c"),
    ("sprig.ternary('yes', 'no', 1 > 0)", "yes"),
    ("sprig.ternary('yes', 'no', false)", "no"),
    ("sprig.toString(1.0)", "1"),
    ("sprig.toString(42)", "42"),
    ("sprig.atoi('42')", 42),
    ("sprig.atoi('010')", 10),
    ("sprig.atoi('4.2')", 0),
    ("sprig.int('42')", 42),
    ("sprig.int('5.0')", 5),
    ("sprig.int('0x10')", 16),
    ("sprig.int('010')", 8),
    ("sprig.int('oops')", 0),
    ("sprig.int(3.7)", 3),
    ("sprig.int(nil)", 0),
    ("sprig.int64('7')", 7),
    ("sprig.float64('1.5')", 1.5),
    ("sprig.float64('x')", 0.0),
    ("sprig.add(1, '2', 3.9)", 6),
    ("sprig.add1(1)", 2),
    ("sprig.sub(10, 3)", 7),
    ("sprig.mul(2, 3, 4)", 24),
    ("sprig.div(7, 2)", 3),
    ("sprig.div(-7, 2)", -3),
    ("sprig.mod(-7, 3)", -1),
    ("sprig.max(1, 9, 3)", 9),
    ("sprig.min(4, '2')", 2),
    ("sprig.floor(1.7)", 1.0),
    ("sprig.ceil(1.2)", 2.0),
    ("sprig.b64enc('hello')", "aGVsbG8="),
    ("sprig.b64dec('aGVsbG8=')", "hello"),
    ("sprig.sha256sum('hello world')", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
    ("sprig.list(1, 'a')", [1, "a"]),
    ("sprig.join(',', ['a', 1, nil, true])", "a,1,true"),
    ("sprig.join(',', 'solo')", "solo"),
    ("sprig.splitList(',', 'a,b,c')", ["a", "b", "c"]),
    ("sprig.first([1, 2])", 1),
    ("sprig.last([1, 2])", 2),
    ("sprig.first([])", None),
    ("sprig.rest([1, 2, 3])", [2, 3]),
    ("sprig.initial([1, 2, 3])", [1, 2]),
    ("sprig.has(2, [1, 2])", True),
    ("sprig.uniq([1, 1, 2])", [1, 2]),
    ("sprig.until(3)", [0, 1, 2]),
    ("sprig.dict('a', 1, 'b', 2)", {"a": 1, "b": 2}),
    ("sprig.get({a: 1}, 'b')", ""),
    ("sprig.hasKey({a: 1}, 'a')", True),
    ("sprig.keys({a: 1})", ["a"]),
    ("sprig.regexMatch('^[a-z]+$', 'abc')", True),
    ("sprig.regexFind('[0-9]+', 'ab12cd34')", "12"),
    ("sprig.regexFindAll('[0-9]+', 'ab12cd34', -1)", ["12", "34"]),
    ("sprig.regexFindAll('[0-9]+', 'ab12cd34', 1)", ["12"]),
    ("sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
    ("sprig.regexReplaceAll('(?P<word>[a-z]+)', 'hi there', '<$word>')", "<hi> <there>"),
    ("sprig.regexReplaceAll('a', 'banana', '$$')", "b$n$n$"),
    ("sprig.regexReplaceAll('a', 'banana', 'x\\\\y')", "bx\\ynx\\ynx\\y"),
    ("sprig.regexReplaceAll('(a)', 'banana', '[$1]\\\\')", "b[a]\\n[a]\\n[a]\\"),
    ("sprig.regexReplaceAll('a', 'banana', '$9')", "bnn"),
    ("sprig.toJson({b: 1, a: 2})", '{"a":2,"b":1}'),
    ("sprig.fromJson('[1]')", [1.0]),
    ("sprig.fromJson('not json')", None),
]


@pytest.mark.parametrize(("expression", "expected"), SPRIG_CASES)
def test_sprig_functions_use_sprig_argument_order(expression: str, expected: Any) -> None:
    result = evaluate(expression, ENV)
    assert result == expected
    assert type(result) is type(expected)


JSONPATH_DOCUMENT = (
    '{"store": {"book": [{"title": "A", "price": 8, "tags": ["x"]}, {"title": "B", "price": 12}],'
    ' "bicycle": {"color": "red"}}, "my-key": 1, "list": [10, 20, 30, 40]}'
)
JSONPATH_CASES: list[tuple[str, Any]] = [
    ("$", None),  # the whole document, checked separately below
    ("$.store.bicycle.color", "red"),
    ("$['store']['bicycle']['color']", "red"),
    ('$["my-key"]', 1.0),
    ("$.list[0]", 10.0),
    ("$.list[-1]", 40.0),
    ("$.list[1:3]", [20.0, 30.0]),
    ("$.list[::2]", [10.0, 30.0]),
    ("$.list[0,2]", [10.0, 30.0]),
    ("$.list[*]", [10.0, 20.0, 30.0, 40.0]),
    ("$.store.book[*].title", ["A", "B"]),
    ("$.store.book[0].tags[0]", "x"),
    ("$..title", ["A", "B"]),
    ("$..color", ["red"]),
    ("$.store.book[?(@.price < 10)].title", ["A"]),
    ("$.store.book[?(@.title == 'B')].price", [12.0]),
    ("$.store.book[?(@.tags)].title", ["A"]),
    ("$.list[?(@ > 25)]", [30.0, 40.0]),
    ("$.store.*.color", ["red"]),
    ("$.store.book[5].title", None),  # out of range in a definite path: an error, checked below
]


@pytest.mark.parametrize(("path", "expected"), JSONPATH_CASES)
def test_jsonpath(path: str, expected: Any) -> None:
    env = {"doc": JSONPATH_DOCUMENT, "path": path}
    if path == "$":
        assert evaluate("jsonpath(doc, path).list", env) == [10.0, 20.0, 30.0, 40.0]
    elif expected is None:
        with pytest.raises(ExpressionError, match="jsonpath: index 5 out of range"):
            evaluate("jsonpath(doc, path)", env)
    else:
        assert evaluate("jsonpath(doc, path)", env) == expected


def test_jsonpath_missing_key_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="jsonpath: key 'nope' not found"):
        evaluate("jsonpath('{\"a\": 1}', '$.nope')", {})


RENDERED: list[tuple[Any, str]] = [
    ("text", "text"),
    ("", ""),
    (1, "1"),
    (-42, "-42"),
    (1.0, "1"),
    (2.5, "2.5"),
    (-0.0, "-0"),
    (0.1, "0.1"),
    (1e-4, "0.0001"),
    (1e-5, "1e-05"),
    (123456.0, "123456"),
    (1234567.0, "1.234567e+06"),
    (1e6, "1e+06"),
    (1e21, "1e+21"),
    (1.5e300, "1.5e+300"),
    (True, "true"),
    (False, "false"),
    ([1, "a", None, 2.0], '[1,"a",null,2]'),
    ({"b": [True], "a": {"c": 1.5}}, '{"a":{"c":1.5},"b":[true]}'),
    ([], "[]"),
    ({}, "{}"),
]


@pytest.mark.parametrize(("value", "text"), RENDERED)
def test_render_prints_like_argo(value: Any, text: str) -> None:
    assert render(value) == text


def test_render_of_expression_results() -> None:
    assert render(evaluate("asFloat('1.0') * 3", {})) == "3"
    assert render(evaluate("asInt('7') / 2", {})) == "3.5"
    assert render(evaluate("map([1, 2], # * 2)", {})) == "[2,4]"
    assert render(evaluate("1 > 0", {})) == "true"


def test_render_refuses_nil() -> None:
    with pytest.raises(ExpressionError, match=re.escape("expression 'x.y': evaluated to nil")):
        render(evaluate("x.y", {"x": {}}), expression="x.y")
    with pytest.raises(ExpressionError, match="evaluated to nil"):
        render(None)


ERRORS: list[tuple[str, str, int | None]] = [
    # syntax
    ("", "empty expression", 1),
    ("1 +", "unexpected end of expression", 4),
    ("(1 + 2", "unexpected end of expression", 7),
    ("1 + 2)", "unexpected token ')'", 6),
    ("[1, 2", "unexpected end of expression", 6),
    ("{a 1}", "unexpected token '1'", 4),
    ("1 2", "unexpected token '2'", 3),
    ("'unterminated", "unterminated string", 1),
    ('"bad \\q escape"', "invalid escape sequence '\\q'", 6),
    ("1abc", "bad number syntax", 1),
    ("a @ b", "unexpected character '@'", 3),
    ("/* open", "unclosed comment", 1),
    ("# > 1", "cannot use pointer accessor outside predicate", 1),
    ("99999999999999999999", "integer literal '99999999999999999999' is too large", 1),
    ("true ? 1", "unexpected end of expression", 9),
    # names and calls
    ("nope", "unknown name 'nope'", 1),
    ("1 + nope * 2", "unknown name 'nope'", 5),
    ("nope(1)", "unknown function 'nope'", 1),
    ("trimAll('x')", "unknown function 'trimAll' (sprig functions are called as sprig.trimAll(...))", 1),
    ("sprig.nope()", "unknown function 'sprig.nope'", 1),
    ("fromJson('[]')", "unknown function 'fromJson' (did you mean fromJSON?)", 1),
    ("sprig", "sprig is a collection of functions", 1),
    ("len(1, 2)", "len takes 1 argument, not 2", 1),
    ("split('a')", "split takes 2 to 3 arguments, not 1", 1),
    ("filter([1])", "filter takes at least 2 arguments, not 1", 1),
    ("'x'.upper()", "cannot call method 'upper'", 5),
    ("(1)(2)", "only built-in functions can be called", 4),
    ("inputs.parameters.my-param", "names with a hyphen must be indexed: write inputs.parameters['my-param']", 22),
    # types
    ('"a" - 1', "invalid operation: 'a' - 1 (mismatched types string and int)", 5),
    ("'a' + 1", "mismatched types string and int", 5),
    ("'a' * 3", "mismatched types string and int", 5),
    ("1 < 'a'", "mismatched types int and string", 3),
    ("[1] < [2]", "mismatched types array and array", 5),
    ("1.5 % 1", "mismatched types float and int", 5),
    ("1 / 0", "division by zero", 3),
    ("1 % 0", "integer divide by zero", 3),
    ("-'a'", "is not a number", 1),
    ("!1", "needs a bool, not int 1", 1),
    ("1 && true", "needs a bool, not int 1", 3),
    ("1 ? 2 : 3", "the condition of ?: must be a bool", 3),
    ("'a' in 'abc'", "operator in not defined on string", 5),
    ("1 contains 'a'", "mismatched types int and string", 3),
    ("'a' matches '('", "invalid regular expression '('", 5),
    ("1..'a'", "mismatched types int and string", 2),
    ("9223372036854775807 + 1", "integer overflow", 21),
    # access
    ("[1, 2][5]", "index out of range: 5 (length is 2)", 7),
    ("[1, 2]['a']", "cannot fetch 'a' from array", 7),
    ("nothing.a", "cannot fetch 'a' from nil", 9),
    ("nil.a", "unexpected token '.'", 4),
    ("(1).a", "cannot fetch 'a' from int", 5),
    ("item.name.first", "cannot fetch 'first' from string", 11),
    ("{a: 1}[[1]]", "cannot use array as a map key", 7),
    ("1[1:2]", "cannot slice int", 2),
    # functions
    ("asInt('1.5')", "cannot convert '1.5' (string) to int", 1),
    ("asInt('x')", "cannot convert 'x' (string) to int", 1),
    ("asInt(true)", "cannot convert true (bool) to int", 1),
    ("asFloat('abc')", "cannot convert 'abc' (string) to float", 1),
    ("int('99999999999999999999')", "value out of range", 1),
    ("len(1)", "invalid argument for len (type int)", 1),
    ("upper(1)", "upper: argument 1 must be a string, not int 1", 1),
    ("join([1, 2], ',')", "join: element 0 is int 1, not a string", 1),
    ("fromJSON('{')", "invalid JSON", 1),
    ("fromJSON('NaN')", "invalid JSON", 1),
    ("fromBase64('***')", "fromBase64: invalid base64", 1),
    ("jsonpath('{}', 'no-dollar')", "must start with '$'", 1),
    ("sort([1, 'a'])", "can only sort numbers or strings", 1),
    ("filter([1, 2], # + 1)", "filter: the predicate must return a bool, not int 2", 1),
    ("filter(1, # > 0)", "filter: the first argument must be an array, not int 1", 1),
    ("sprig.div(1, 0)", "sprig.div: integer divide by zero", 1),
    ("sprig.b64dec('***')", "sprig.b64dec: invalid base64", 1),
    ("sprig.ternary(1, 2, 'x')", "the third argument must be a bool", 1),
    ("repeat('a', -1)", "negative repeat count", 1),
    ("max('a')", "invalid argument for max (type string)", 1),
]


@pytest.mark.parametrize(("expression", "fragment", "column"), ERRORS)
def test_errors_quote_the_expression_and_say_where(expression: str, fragment: str, column: int | None) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, ENV)
    error = caught.value
    assert isinstance(error, TreadleError)
    assert str(error).startswith(f"expression {expression!r}: ")
    assert fragment in str(error)
    assert error.column == column
    if column is not None:
        assert str(error).endswith(f"(column {column})")


def test_error_in_a_multi_line_expression_names_the_line() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate("1 +\n  2 +\n  nope", {})
    assert (caught.value.line, caught.value.column) == (3, 3)
    assert str(caught.value).endswith("(line 3, column 3)")


def test_long_expressions_are_shortened_in_messages() -> None:
    expression = "1 + " * 40 + "nope"
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, {})
    assert len(str(caught.value)) < 300
    assert caught.value.expression == expression
    assert caught.value.column == len(expression) - 3


def test_errors_survive_pickling() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate("nope", {})
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.column, copy.reason) == (str(caught.value), 1, "unknown name 'nope'")


HOSTILE: list[tuple[str, str]] = [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__", "unknown name '__import__'"),
    ("().__class__", "unexpected token ')'"),
    ("''.__class__", "cannot fetch '__class__' from string"),
    ("''.__class__.__mro__[1].__subclasses__()", "cannot call method '__subclasses__'"),
    ("[].__class__.__base__", "cannot fetch '__class__' from array"),
    ("item.__class__.__init__.__globals__", "cannot fetch '__init__' from nil"),
    ("eval('1')", "unknown function 'eval'"),
    ("exec", "unknown name 'exec'"),
    ("sprig.env('HOME')", "unknown function 'sprig.env'"),
    ("(" * 150 + "1" + ")" * 150, "nested too deeply"),
    ("[" * 150 + "]" * 150, "nested too deeply"),
    ("-" * 150 + "1", "nested too deeply"),
    ("!" * 150 + "true", "nested too deeply"),
    ("1" + " + 1" * 500, "nested too deeply"),
    ("x" * 10_001, "too long (10001 characters; the limit is 10000)"),
    ('"a" * 1e9', "mismatched types string and float"),
    ("repeat('a', 1000000000)", "string result too long"),
    ("repeat(repeat('a', 100000), 1000)", "string result too long"),
    ("sprig.repeat(1000000000, 'a')", "string result too long"),
    ("replace(repeat('a', 5000000), 'a', 'aaaa')", "string result too long"),
    ("sprig.regexReplaceAll('a', repeat('a', 5000000), 'aaaa')", "result too long"),
    ("join(map(1..100000, {repeat('x', 200)}), '')", "string result too long"),
    ("let s = repeat('a', 9000000); s + s", "string result too long"),
    ("1..10000000", "too many items"),
    ("sprig.until(100000000)", "above the limit"),
    ("map(1..1000000, {1..1000000})", "too expensive"),
    ("map(1..1000, {map(1..1000, {map(1..1000, {#})})})", "too expensive"),
    ("2 ** 100000", "out of range"),
    ("9 ** 9 ** 9 ** 9", "out of range"),
    ("10.0 ** 400", "out of range"),
    ("(-8) ** 0.5", "not a real number"),
    ("1e308 * 10", "out of range"),
    ("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' matches '^(a+)+$'", "exponential time"),
    ("'x' matches '(a|a)*'", "exponential time"),
    ("'x' matches '(x)\\\\1'", "backreference"),
    ("'x' matches '(?<=a)x'", "lookaround"),
    ("'x' matches repeat('a', 2000)", "regular expression too long"),
    ("fromJSON(repeat('[', 100000) + repeat(']', 100000))", "nested too deeply"),
    ("toJSON(fromJSON(repeat('[', 300) + repeat(']', 300)))", "nested too deeply"),
]


@pytest.mark.parametrize(("expression", "fragment"), HOSTILE)
def test_hostile_expressions_fail_cleanly_and_quickly(expression: str, fragment: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        evaluate(expression, ENV)
    assert time.monotonic() - started < 3.0


def test_nesting_within_the_limits_works() -> None:
    assert evaluate("(" * 90 + "1" + ")" * 90, {}) == 1
    assert evaluate("1" + " + 1" * 150, {}) == 151
    assert evaluate("len(map(1..100000, {# * 2}))", {}) == 100_000


def test_safe_patterns_with_a_repeated_group_are_allowed() -> None:
    assert evaluate("'v1.22.3' matches '^v[0-9]+(\\\\.[0-9]+)*$'", {}) is True
    assert evaluate("'v1.22.3x' matches '^v[0-9]+(\\\\.[0-9]+)*$'", {}) is False
    assert evaluate("'abab' matches '^(?:ab)+$'", {}) is True


def test_evaluation_does_not_mutate_the_environment() -> None:
    env = env_from_flat(FLAT)
    evaluate("sortBy(item.tags, #, 'desc')", env)
    evaluate("reverse(item.tags)", env)
    assert env == ENV


def test_results_are_plain_python_values() -> None:
    assert evaluate("{a: [1, {b: nil}]}", {}) == {"a": [1, {"b": None}]}
    assert math.isclose(evaluate("0.1 + 0.2", {}), 0.30000000000000004)


# ---------------------------------------------------------------- env_from_flat


def test_env_from_flat_nests_dotted_names() -> None:
    assert env_from_flat({"a.b.c": 1, "a.b.d": 2, "e": 3}) == {"a": {"b": {"c": 1, "d": 2}}, "e": 3}


def test_env_from_flat_drops_a_name_that_is_also_a_prefix() -> None:
    env = env_from_flat({"inputs.parameters": "[...]", "inputs.parameters.x": "1", "workflow.parameters.json": "[]"})
    assert env == {"inputs": {"parameters": {"x": "1"}}, "workflow": {"parameters": {"json": "[]"}}}


def test_env_from_flat_keeps_similar_but_unrelated_names() -> None:
    # "a" is not a parent of "ab" or "a-b"; Argo's prefix check drops it anyway, we do not.
    assert env_from_flat({"a": 1, "ab.c": 2, "a-b": 3}) == {"a": 1, "ab": {"c": 2}, "a-b": 3}


def test_env_from_flat_keeps_structured_values() -> None:
    env = env_from_flat({"item": {"name": "x"}, "steps.a.outputs.parameters.p": "v"})
    assert evaluate("item.name + steps.a.outputs.parameters.p", env) == "xv"


def test_env_from_flat_supports_both_access_forms() -> None:
    env = env_from_flat({"inputs.parameters.my-param": "1", "inputs.parameters.plain": "2"})
    assert evaluate("inputs.parameters['my-param'] + inputs.parameters.plain", env) == "12"


# ---------------------------------------------------------------- purity and safety of the source


ALLOWED_IMPORTS = {"treadle.errors", "__future__"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "literal_eval", "globals", "locals", "vars", "open"}
# getattr only where it reads the fields of our own syntax-tree dataclasses, never a value.
GETATTR_ALLOWED_IN = {"nodes.py"}


def _modules() -> list[Path]:
    return sorted(EXPR_PACKAGE.glob("*.py"))


@pytest.mark.parametrize("module", _modules(), ids=lambda path: path.name)
def test_the_evaluator_imports_only_the_standard_library(module: Path) -> None:
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            ok = name in ALLOWED_IMPORTS or name.startswith("treadle.expr") or top in sys.stdlib_module_names
            assert ok, f"{module.name} imports {name}"


@pytest.mark.parametrize("module", _modules(), ids=lambda path: path.name)
def test_the_evaluator_never_evaluates_python_code(module: Path) -> None:
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name):
                assert function.id not in FORBIDDEN_CALLS, f"{module.name}:{node.lineno} calls {function.id}"
                if function.id in ("getattr", "setattr", "delattr"):
                    assert module.name in GETATTR_ALLOWED_IN, f"{module.name}:{node.lineno} calls {function.id}"
            elif isinstance(function, ast.Attribute):
                assert function.attr != "literal_eval", f"{module.name}:{node.lineno} calls literal_eval"
