"""Secrets as files, laid out as Kubernetes mounts a Secret volume: ``<directory>/<name>/<key>``.

A selector ``{name, key}`` (Argo's SecretKeySelector) names one file. The
artifact service reads S3 keys and HTTP and git credentials this way; the Docker
runtime reads a step's ``env[].valueFrom.secretKeyRef``. Values are read when
needed and never logged, stored or returned: errors name the secret and key,
never the value, and ``redact`` scrubs values from text that came from a
subprocess or a server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from treadle.errors import FailedPrecondition, InvalidSpec

# Kubernetes secret names are DNS subdomains and keys are [-._a-zA-Z0-9]+: each must be one path component.
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")
MAX_SECRET_BYTES = 64 * 1024
REDACTED = "<redacted>"


class SecretFiles:
    """Secrets mounted as files: one directory per secret, one file per key."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, name: str, key: str, *, field: str = "secret") -> Path:
        """Where the selector's value lives. InvalidSpec for a name that would leave the directory."""
        for part, label in ((name, "name"), (key, "key")):
            if not _SAFE_COMPONENT.fullmatch(part) or part in (".", ".."):
                raise InvalidSpec(f"secret {label} {part!r} is not a valid name", field=f"{field}.{label}")
        if self.root is None:
            raise FailedPrecondition(
                f"secret {name!r} is needed, but no secrets directory is configured (treadle serve --secrets-dir)",
                subject=name,
            )
        return self.root / name / key

    def read(self, name: str, key: str, *, field: str = "secret") -> str:
        """A credential: the value without one trailing newline. FailedPrecondition when it cannot be read."""
        return read_secret_file(self.path(name, key, field=field), f"secret {name!r} key {key!r}")

    def read_exact(self, name: str, key: str, *, field: str = "secret") -> str | None:
        """The value exactly as stored (as Kubernetes puts it in an environment variable); None when missing."""
        path = self.path(name, key, field=field)
        if not path.exists():
            return None
        return read_secret_file(path, f"secret {name!r} key {key!r}", trim_newline=False)


def read_secret_file(path: Path, what: str, *, trim_newline: bool = True) -> str:
    """A secret's text from a file; FailedPrecondition naming what (never the value) when unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise FailedPrecondition(f"{what} cannot be read: {exc.strerror or type(exc).__name__}", subject=what) from None
    if len(data) > MAX_SECRET_BYTES:
        raise FailedPrecondition(f"{what} is larger than {MAX_SECRET_BYTES} bytes", subject=what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FailedPrecondition(f"{what} is not UTF-8 text", subject=what) from None
    return text[:-1] if trim_newline and text.endswith("\n") else text


def read_env(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise FailedPrecondition(f"{what}: environment variable {name} is not set", subject=name)
    return value


def redact(text: str, values: Iterable[str]) -> str:
    """text with every secret value (and its URL-encoded form) replaced by <redacted>."""
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, REDACTED).replace(quote(value, safe=""), REDACTED)
    return text
