"""Kubernetes label selectors as ListWorkflows takes them."""

from __future__ import annotations

import pytest

from treadle.errors import InvalidSpec
from treadle.services.admission.selectors import Operator, Requirement, parse_label_selector

LABELS = {"team": "a", "env": "dev", "example.com/tier": "gold", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("  ", True),
        ("team=a", True),
        ("team==a", True),
        ("team = a", True),
        ("team=b", False),
        ("team!=b", True),
        ("missing!=b", True),  # as in Kubernetes: != also holds when the label is absent
        ("env in (dev,qa)", True),
        ("env in ( qa , dev )", True),
        ("env in (qa)", False),
        ("env notin (qa)", True),
        ("missing notin (qa)", True),
        ("env notin (dev)", False),
        ("team", True),
        ("missing", False),
        ("!missing", True),
        ("! team", False),
        ("example.com/tier=gold", True),
        ("empty=", True),
        ("team=a,env in (dev),!missing,example.com/tier", True),
        ("team=a,env=prod", False),
    ],
)
def test_a_selector_matches_as_kubernetes_does(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


def test_requirements_are_parsed_into_their_parts() -> None:
    selector = parse_label_selector("a=1, b!=2, c in (x,y), d notin (z), e, !f")
    assert selector.requirements == (
        Requirement("a", Operator.EQUALS, frozenset({"1"})),
        Requirement("b", Operator.NOT_EQUALS, frozenset({"2"})),
        Requirement("c", Operator.IN, frozenset({"x", "y"})),
        Requirement("d", Operator.NOT_IN, frozenset({"z"})),
        Requirement("e", Operator.EXISTS),
        Requirement("f", Operator.NOT_EXISTS),
    )


@pytest.mark.parametrize(
    ("selector", "complaint"),
    [
        ("a=b,", "empty requirement"),
        (",a=b", "empty requirement"),
        ("a=b=c", "expected key=value"),
        ("a b", "expected key=value"),
        ("a in x", "expected key=value"),
        ("a in (x", "unbalanced '('"),
        ("a in x)", "unbalanced ')'"),
        ("a in ()", "needs a list of values"),
        ("a in (x,,y)", "needs a list of values"),
        ("a notin (x y)", "needs a list of values"),
        ("a=(b)", "expected key=value"),
    ],
)
def test_a_bad_selector_names_the_field_and_the_requirement(selector: str, complaint: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_label_selector(selector)
    (violation,) = caught.value.violations
    assert violation.field == "label_selector"
    assert complaint in violation.description
