"""Naming input artifact sources in messages without credentials, and reading secrets as Kubernetes mounts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.errors import FailedPrecondition, InvalidSpec
from treadle.secrets import SecretFiles, redact
from treadle.services.artifacts.sources import describe_source, import_kind, redact_url
from treadle.spec.convert import template_from_dict
from treadle.workflow.v1 import workflow_pb2


def artifact(**fields: object) -> workflow_pb2.Artifact:
    template = template_from_dict({"name": "t", "inputs": {"artifacts": [{"name": "a", "path": "/a", **fields}]}})
    return template.inputs.artifacts[0]


@pytest.mark.parametrize(
    ("fields", "described", "kind"),
    [
        (
            {"http": {"url": "https://u:p@example.com:8443/d.csv?X-Amz-Signature=abc#f"}},
            "http https://example.com:8443/d.csv?...",
            "http",
        ),
        (
            {"git": {"repo": "https://tok@github.com/o/r.git", "revision": "v1"}},
            "git https://github.com/o/r.git at v1",
            "git",
        ),
        ({"git": {"repo": "file:///srv/r.git"}}, "git file:///srv/r.git at the default branch", "git"),
        ({"s3": {"key": "data/x.csv"}}, "s3 key data/x.csv", "s3"),
        (
            {"s3": {"bucket": "b", "key": "k", "endpoint": "minio:9000"}, "subPath": "sub"},
            "s3://b/k/sub at minio:9000",
            "s3",
        ),
        ({"raw": {"data": "secret text"}}, "raw data", None),
        (
            {"from": "{{steps.a.outputs.artifacts.x}}", "subPath": "d"},
            "{{steps.a.outputs.artifacts.x}} (subPath d)",
            None,
        ),
        ({"stored": {"key": "wf/p/x.tgz", "repository": "minio"}}, "artifact wf/p/x.tgz in repository 'minio'", None),
    ],
)
def test_sources_are_described_without_credentials(fields: dict[str, object], described: str, kind: str | None) -> None:
    a = artifact(**fields)
    assert describe_source(a) == described
    assert import_kind(a) == kind


def test_redact_url_and_values() -> None:
    assert redact_url("http://[::1]:80/x") == "http://[::1]:80/x"
    assert redact("user=alice pass=p%40ss and p@ss", ["p@ss", ""]) == "user=alice pass=<redacted> and <redacted>"


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "token").write_text("abc\n")
    (tmp_path / "creds" / "binary").write_bytes(b"\xff\xfe")
    secrets = SecretFiles(tmp_path)
    assert secrets.read("creds", "token") == "abc"
    with pytest.raises(FailedPrecondition, match="secret 'creds' key 'missing' cannot be read"):
        secrets.read("creds", "missing")
    with pytest.raises(FailedPrecondition, match="not UTF-8"):
        secrets.read("creds", "binary")
    for name, key in (("..", "token"), ("creds", "../x"), ("a/b", "c"), ("", "k")):
        with pytest.raises(InvalidSpec):
            secrets.read(name, key)
    with pytest.raises(FailedPrecondition, match="no secrets directory"):
        SecretFiles(None).read("creds", "token")
