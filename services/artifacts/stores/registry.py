"""Stores are chosen by the repository URI's scheme, from a registry (Flyte's pattern).

``file:///var/lib/treadle/artifacts``, ``memory://`` and
``s3://bucket/prefix?endpoint=...`` (stores/s3_config.py) are built in. Another
driver registers a factory for its scheme; the factory imports its client
library lazily so unused drivers cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from treadle.errors import InvalidSpec

from .base import ArtifactStore

StoreFactory = Callable[[SplitResult], ArtifactStore]

_FACTORIES: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make open_store hand URIs with this scheme to factory (a later registration wins)."""
    _FACTORIES[scheme.lower()] = factory


def open_store(uri: str) -> ArtifactStore:
    """The store a repository URI names. Raises InvalidSpec for an unknown scheme or a bad URI."""
    parts = urlsplit(uri)
    factory = _FACTORIES.get(parts.scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_FACTORIES))
        raise InvalidSpec(
            f"no artifact store for {_redact(parts)!r} (scheme {parts.scheme!r}); known schemes: {known}",
            field="artifactRepository",
        )
    return factory(parts)


def registered_schemes() -> list[str]:
    return sorted(_FACTORIES)


def _redact(parts: SplitResult) -> str:
    """The URI without user info, which may hold credentials."""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host, query="").geturl()


def _open_file(parts: SplitResult) -> ArtifactStore:
    from .local import LocalStore

    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise InvalidSpec(f"{_redact(parts)!r} must be file:///absolute/path", field="artifactRepository")
    return LocalStore(Path(unquote(parts.path)))


def _open_memory(parts: SplitResult) -> ArtifactStore:
    from .memory import MemoryStore

    return MemoryStore()


def _open_s3(parts: SplitResult) -> ArtifactStore:
    from .s3_config import open_s3_store, s3_config_from_uri

    return open_s3_store(s3_config_from_uri(parts))


register_store("file", _open_file)
register_store("memory", _open_memory)
register_store("s3", _open_s3)
