"""Secrets as files, laid out as Kubernetes mounts them: <directory>/<secret name>/<key>.

Values are read when a step starts and handed to its container only; they are
never logged, and no message carries one.
"""

from __future__ import annotations

import re
from pathlib import Path

# Kubernetes secret names are DNS subdomains; keys are [-._a-zA-Z0-9]+. Both must be one path component.
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class SecretError(LookupError):
    """A secret or key is missing, unreadable, or not a safe name; str() names it, never its value."""


class SecretFiles:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def read(self, name: str, key: str) -> str | None:
        """The value of key in secret name; None when the file does not exist."""
        for what, component in (("secret name", name), ("key", key)):
            if not _SAFE_COMPONENT.match(component) or component in (".", ".."):
                raise SecretError(f"{what} {component!r} is not a valid name")
        if self.directory is None:
            raise SecretError("no secrets directory is configured (treadle serve --secrets-dir)")
        path = self.directory / name / key
        try:
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise SecretError(f"secret {name!r} key {key!r} is not UTF-8 text") from None
        except OSError as exc:
            raise SecretError(f"secret {name!r} key {key!r} cannot be read: {exc.strerror}") from None
