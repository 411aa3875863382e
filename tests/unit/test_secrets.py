"""treadle.secrets: the one reader of secrets mounted as files (artifact credentials, step env)."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.errors import FailedPrecondition, InvalidSpec
from treadle.secrets import MAX_SECRET_BYTES, SecretFiles, redact


def secrets_dir(tmp_path: Path, **values: bytes) -> SecretFiles:
    for key, value in values.items():
        (tmp_path / "creds").mkdir(exist_ok=True)
        (tmp_path / "creds" / key).write_bytes(value)
    return SecretFiles(tmp_path)


def test_a_credential_loses_one_trailing_newline_an_env_value_keeps_it(tmp_path: Path) -> None:
    secrets = secrets_dir(tmp_path, token=b"s3cr3t\n\n")
    assert secrets.read("creds", "token") == "s3cr3t\n"
    assert secrets.read_exact("creds", "token") == "s3cr3t\n\n"


def test_a_missing_key_is_none_for_env_and_an_error_naming_it_for_credentials(tmp_path: Path) -> None:
    secrets = secrets_dir(tmp_path, token=b"x")
    assert secrets.read_exact("creds", "other") is None
    with pytest.raises(FailedPrecondition, match="secret 'creds' key 'other' cannot be read"):
        secrets.read("creds", "other")


@pytest.mark.parametrize(
    ("name", "key", "label"), [("..", "passwd", "name"), ("creds", "../x", "key"), ("a/b", "k", "name")]
)
def test_names_that_would_leave_the_directory_are_refused(tmp_path: Path, name: str, key: str, label: str) -> None:
    with pytest.raises(InvalidSpec, match="is not a valid name") as caught:
        SecretFiles(tmp_path).read_exact(name, key, field="env[0].valueFrom.secretKeyRef")
    assert caught.value.violations[0].field == f"env[0].valueFrom.secretKeyRef.{label}"


def test_without_a_directory_the_error_says_how_to_configure_one() -> None:
    with pytest.raises(FailedPrecondition, match="--secrets-dir"):
        SecretFiles(None).read("creds", "token")


def test_oversized_and_binary_values_are_refused_without_quoting_them(tmp_path: Path) -> None:
    secrets = secrets_dir(tmp_path, big=b"a" * (MAX_SECRET_BYTES + 1), binary=b"\xff\xfe")
    with pytest.raises(FailedPrecondition, match="larger than") as caught:
        secrets.read("creds", "big")
    assert "aaaa" not in str(caught.value)
    with pytest.raises(FailedPrecondition, match="not UTF-8"):
        secrets.read_exact("creds", "binary")


def test_redact_scrubs_plain_and_url_encoded_values() -> None:
    assert redact("user p@ss and p%40ss", ["p@ss"]) == "user <redacted> and <redacted>"
