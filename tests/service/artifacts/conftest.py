"""Fixtures for the artifact tests: a real S3 server (moto in server mode, its own process) and buckets in it.

Helpers live in modules with unique names (artifacts_*.py): test folders share one
module namespace, so a plain "conftest" or "harness" import could find another folder's.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from artifacts_s3 import ACCESS_KEY, SECRET_KEY, S3Server, moto_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 in server mode, in its own process: real HTTP on a free loopback port, stopped after the session."""
    with moto_s3_server() as endpoint:
        yield S3Server(endpoint)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket."""
    name = f"test-{secrets.token_hex(6)}"
    s3_server.client().make_bucket(name)
    return name


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default credentials a repository URI without credential settings reads."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
