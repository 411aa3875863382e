"""Regular expressions with guards against catastrophic backtracking.

Argo matches with Go's RE2, which runs in linear time. Python's `re` backtracks,
so a pattern like `(a+)+$` can take exponential time on a short string, and
Python cannot interrupt a running match. So patterns are screened first:

* a group repeated more than once (`*`, `+`, `{n,}`, `{n,m}` with m > 1) is
  rejected when its body has alternatives (`(a|aa)*`) or repeats something
  (`(a+)+`), which is the shape behind exponential backtracking. The common safe
  form is allowed: a body that starts with a fixed character its repeated parts
  cannot match, as in `^v[0-9]+(\\.[0-9]+)*$`, where every round starts with a dot;
* lookaround and backreferences are rejected, as RE2 rejects them;
* patterns longer than MAX_PATTERN_LENGTH are rejected.

Known limitation: this is a heuristic. Polynomial backtracking is not detected
(`a*a*a*b`, or `.*x.*y` searched in a long text without a match), so a hostile
pattern can still cost seconds on a large input. A hard bound needs an RE2
engine, which the standard library does not have.
One more difference from RE2: Python's `$` also matches before a final newline.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from treadle.expr.errors import Failure
from treadle.expr.limits import MAX_PATTERN_LENGTH

_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")
_META = frozenset(".^$|()[]{}*+?\\")


@dataclass
class _Group:
    start: int  # index of the opening parenthesis; -1 for the whole pattern
    atoms: int = 0
    delimiter: str | None = None  # the first atom, when it is a single mandatory literal character
    repeated: list[str] = field(default_factory=list)  # atoms inside whose length varies (quantified)
    has_alternatives: bool = False


@dataclass(frozen=True)
class _Quantifier:
    length: int  # characters it takes in the pattern, 0 when there is none
    may_skip: bool  # allows zero repetitions
    repeats: bool  # allows more than one repetition (`{2}` counts, though its length is fixed)


def _quantifier_at(pattern: str, index: int) -> _Quantifier:
    char = pattern[index : index + 1]
    if char in ("*", "+", "?"):
        length = 2 if pattern[index + 1 : index + 2] in ("?", "+") else 1  # lazy or possessive suffix
        return _Quantifier(length, char != "+", char != "?")
    if char == "{":
        match = _REPEAT.match(pattern, index)
        if match and (match.group(1) or match.group(3)):
            lower = int(match.group(1) or 0)
            upper = match.group(3) if match.group(2) else match.group(1)
            return _Quantifier(match.end() - index, lower == 0, not upper or int(upper) > 1)
    return _Quantifier(0, False, False)


def _skip_class(pattern: str, index: int) -> int:
    """Index just after the character class that starts at index (at '[')."""
    index += 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _literal_character(atom: str) -> str | None:
    if len(atom) == 1 and atom not in _META:
        return atom
    if len(atom) == 2 and atom[0] == "\\" and not atom[1].isalnum():
        return atom[1]
    return None


def _can_match(atom: str, character: str) -> bool:
    try:
        return re.fullmatch(atom, character) is not None
    except re.error:
        return True  # cannot tell: assume the worst


def _is_delimited(group: _Group) -> bool:
    """Whether every round of the group starts with a character none of its repeated parts can take."""
    delimiter = group.delimiter
    if delimiter is None or group.has_alternatives:
        return False
    return not any(_can_match(atom, delimiter) for atom in group.repeated)


def _group_header_length(pattern: str, index: int) -> int | None:
    """Length of `(`, `(?:`, `(?P<name>` or `(?i:`; None for a standalone flag group like `(?i)`."""
    if not pattern.startswith("(?", index):
        return 1
    if pattern.startswith("(?P<", index):
        close = pattern.find(">", index)
        return close - index + 1 if close != -1 else 1
    position = index + 2
    while position < len(pattern) and (pattern[position].isalpha() or pattern[position] == "-"):
        position += 1
    if pattern[position : position + 1] == ")":
        return None
    return position - index + 1  # past the ':'


def screen(pattern: str) -> None:
    """Raise Failure if the pattern is too long, unsupported by RE2, or prone to blow up."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise Failure(f"regular expression too long ({len(pattern)} characters; the limit is {MAX_PATTERN_LENGTH})")
    groups = [_Group(start=-1)]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        finished: _Group | None = None
        if char == "\\":
            following = pattern[index + 1 : index + 2]
            if (following.isdigit() and following != "0") or following == "k":
                raise Failure(f"regular expression {pattern!r} uses a backreference, which RE2 does not support")
            atom, index = pattern[index : index + 2], index + 2
        elif char == "[":
            end = _skip_class(pattern, index)
            atom, index = pattern[index:end], end
        elif char == "(":
            if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?P="), index):
                raise Failure(f"regular expression {pattern!r} uses lookaround or a backreference, unlike RE2")
            header = _group_header_length(pattern, index)
            if header is None:  # `(?i)`: flags, not a group
                index = pattern.index(")", index) + 1
            else:
                groups.append(_Group(start=index))
                index += header
            continue
        elif char == ")" and len(groups) > 1:
            finished = groups.pop()
            atom, index = pattern[finished.start : index + 1], index + 1
        elif char == "|":
            groups[-1].has_alternatives = True
            index += 1
            continue
        elif char in "^$":
            index += 1
            continue
        else:
            atom, index = char, index + 1
        _add_atom(pattern, groups[-1], atom, finished, _quantifier_at(pattern, index))
        index += _quantifier_at(pattern, index).length


def _add_atom(pattern: str, group: _Group, atom: str, finished: _Group | None, quantifier: _Quantifier) -> None:
    """Record an atom (a character, class, escape or finished group) and the quantifier after it."""
    if finished is not None:
        risky = finished.has_alternatives or (finished.repeated and not _is_delimited(finished))
        if quantifier.repeats and risky:
            raise Failure(
                f"regular expression {pattern!r} repeats a group that itself repeats or has alternatives"
                " (like '(a+)+'), which can take exponential time; rewrite it without the nested repetition"
            )
        group.repeated.extend(finished.repeated)
    if quantifier.repeats or quantifier.may_skip:  # a part of varying length: `a+`, `a?`, `a{1,3}`
        group.repeated.append(atom)
    if group.atoms == 0:
        group.delimiter = None if quantifier.length else _literal_character(atom)
    group.atoms += 1


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A compiled, screened pattern; Failure when it is invalid or unsafe."""
    screen(pattern)
    try:
        return _compile(pattern)
    except re.error as error:
        raise Failure(f"invalid regular expression {pattern!r}: {error}") from None
    except RecursionError:
        raise Failure(f"regular expression {pattern!r} is nested too deeply") from None


def expand_go_template(match: re.Match[str], template: str) -> str:
    """Expand Go's Regexp.Expand template: `$1`, `${1}`, `$name`, `${name}`, `$$` for a dollar."""
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char != "$" or index + 1 >= len(template):
            out.append(char)
            index += 1
            continue
        following = template[index + 1]
        if following == "$":
            out.append("$")
            index += 2
            continue
        if following == "{":
            close = template.find("}", index + 2)
            name = template[index + 2 : close] if close != -1 else ""
            end = close + 1
        else:
            end = index + 1
            while end < len(template) and (template[end].isalnum() or template[end] == "_"):
                end += 1
            name = template[index + 1 : end]
        if not name or not all(c.isalnum() or c == "_" for c in name):
            out.append(char)  # not a valid reference: Go keeps the dollar as it is
            index += 1
            continue
        out.append(_group_text(match, name))
        index = end
    return "".join(out)


def _group_text(match: re.Match[str], name: str) -> str:
    try:
        group = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # no such group: Go substitutes nothing
        return ""
    return group or ""
