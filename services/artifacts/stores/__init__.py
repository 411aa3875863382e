"""Artifact storage drivers behind one small streaming contract."""

from .base import CHUNK_BYTES, ArtifactStore, ObjectInfo, ObjectPage, ObjectReader
from .local import LocalStore
from .memory import MemoryStore
from .registry import open_store, register_store, registered_schemes

__all__ = [
    "CHUNK_BYTES",
    "ArtifactStore",
    "LocalStore",
    "MemoryStore",
    "ObjectInfo",
    "ObjectPage",
    "ObjectReader",
    "open_store",
    "register_store",
    "registered_schemes",
]
