"""Secrets the artifact service reads: S3 keys, HTTP and git credentials.

A secret selector ``{name, key}`` (Argo's SecretKeySelector) names the file
``<secrets_dir>/<name>/<key>``, which is how Kubernetes mounts a Secret
volume. Values are read when needed and never logged, stored or returned:
error messages name the secret, not its value, and ``redact`` scrubs values
from any text that came from a subprocess or a server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from treadle.errors import FailedPrecondition, InvalidSpec

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_MAX_SECRET_BYTES = 64 * 1024
REDACTED = "<redacted>"


class SecretFiles:
    """Secrets mounted as files: one directory per secret, one file per key."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, name: str, key: str, *, field: str = "secret") -> Path:
        """Where the selector's value lives. Refuses names that would leave the secrets directory."""
        for part, label in ((name, "name"), (key, "key")):
            if not _SEGMENT.fullmatch(part) or part in (".", ".."):
                raise InvalidSpec(f"secret {label} {part!r} is not a valid name", field=f"{field}.{label}")
        if self.root is None:
            raise FailedPrecondition(
                f"secret {name!r} is needed, but the artifact service has no secrets directory configured",
                subject=name,
            )
        return self.root / name / key

    def read(self, name: str, key: str, *, field: str = "secret") -> str:
        """The selector's value, without one trailing newline."""
        return read_secret_file(self.path(name, key, field=field), f"secret {name!r} key {key!r}")


def read_secret_file(path: Path, what: str) -> str:
    """A secret's text from a file; FailedPrecondition naming what (never the value) when unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise FailedPrecondition(f"{what} cannot be read: {exc.strerror or type(exc).__name__}", subject=what) from None
    if len(data) > _MAX_SECRET_BYTES:
        raise FailedPrecondition(f"{what} is larger than {_MAX_SECRET_BYTES} bytes", subject=what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FailedPrecondition(f"{what} is not UTF-8 text", subject=what) from None
    return text[:-1] if text.endswith("\n") else text


def read_env(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise FailedPrecondition(f"{what}: environment variable {name} is not set", subject=name)
    return value


def redact(text: str, values: Iterable[str]) -> str:
    """text with every secret value (and its URL-encoded form) replaced by <redacted>."""
    from urllib.parse import quote

    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, REDACTED).replace(quote(value, safe=""), REDACTED)
    return text
