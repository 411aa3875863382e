"""Artifact keys: the key format and the rules that keep keys inside the repository."""

from __future__ import annotations

import pytest

from treadle.errors import InvalidSpec
from treadle.services.artifacts.keys import (
    DEFAULT_KEY_FORMAT,
    MAX_KEY_BYTES,
    ArtifactTarget,
    KeyFormat,
    validate_key,
    validate_prefix,
)


def test_default_format_is_argos() -> None:
    assert DEFAULT_KEY_FORMAT == "{{workflow.name}}/{{pod.name}}/{{artifact.name}}"
    key = KeyFormat().render(ArtifactTarget("wf-1", "wf-1-step-123", "main-logs", ".log"))
    assert key == "wf-1/wf-1-step-123/main-logs.log"
    assert KeyFormat().render(ArtifactTarget("wf", "pod", "result")) == "wf/pod/result"


def test_custom_format_with_fixed_leading_segments_and_spacing() -> None:
    fmt = KeyFormat("runs/{{ workflow.name }}/{{pod.name}}/{{artifact.name}}")
    assert fmt.render(ArtifactTarget("w", "p", "a", ".tgz")) == "runs/w/p/a.tgz"
    assert fmt.workflow_prefix("w") == "runs/w/"
    assert KeyFormat().workflow_prefix("w") == "w/"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{workflow.name}}/{{pod.name}}", "artifact.name"),
        ("{{workflow.name}}/{{node.id}}/{{artifact.name}}", "node.id"),
        ("{{pod.name}}/{{workflow.name}}/{{artifact.name}}", "whole segment"),
        ("x{{workflow.name}}/{{artifact.name}}", "whole segment"),
        ("{{artifact.name}}", "whole segment"),
    ],
)
def test_bad_formats_are_refused(template: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message) as caught:
        KeyFormat(template)
    assert caught.value.violations[0].field == "keyFormat"


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (ArtifactTarget("", "p", "a"), "workflow"),
        (ArtifactTarget("w", "..", "a"), "pod_name"),
        (ArtifactTarget("w", "p", "a/b"), "artifact_name"),
        (ArtifactTarget("w/x", "p", "a"), "workflow"),
        (ArtifactTarget("w", "p", "a", "tgz"), "suffix"),
        (ArtifactTarget("w", "p", "a", "./x"), "suffix"),
    ],
)
def test_each_variable_fills_exactly_one_segment(target: ArtifactTarget, field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        KeyFormat().render(target)
    assert caught.value.violations[0].field == field


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("../etc/passwd", "'..' path segment"),
        ("wf/../../x", "'..' path segment"),
        ("wf/pod/..", "'..' path segment"),
        ("wf/./x", "'.' path segment"),
        ("/abs/key", "is absolute"),
        ("wf\\..\\x", "backslash"),
        ("wf//x", "empty path segment"),
        ("wf/x/", "empty path segment"),
        ("wf/\x00x", "NUL"),
        ("wf/\nx", "control character"),
        ("k" * (MAX_KEY_BYTES + 1), "longer than"),
    ],
)
def test_unsafe_keys_are_refused_naming_the_key(key: str, problem: str) -> None:
    with pytest.raises(InvalidSpec, match=problem) as caught:
        validate_key(key)
    assert repr(key) in str(caught.value)
    assert caught.value.violations[0].field == "key"


@pytest.mark.parametrize("key", ["wf/pod/a.tgz", "a", "wf/pod/..hidden", "wf/pod/a..b", "ünï/côdé", "w f/p+q@r"])
def test_ordinary_keys_pass(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("prefix", ["", "wf", "wf/", "wf/po", "wf/pod/"])
def test_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "../", "wf//", "/wf", "wf/../", "wf\\"])
def test_unsafe_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        validate_prefix(prefix)
    assert caught.value.violations[0].field == "prefix"


def test_keys_of_the_stores_own_objects_are_reserved() -> None:
    for key in (".treadle/tmp/x", ".treadle", ".treadle-anything/x"):
        with pytest.raises(InvalidSpec, match="reserved"):
            validate_key(key)
    assert validate_key("wf/.treadle/x") == "wf/.treadle/x"  # only at the start of a key
