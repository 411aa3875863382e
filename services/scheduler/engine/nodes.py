"""Where the engine keeps nodes. The scheduler backs this with SQLite."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any, Protocol

from treadle.services.scheduler.engine.model import Node

# One counter for every table in the process, so a revision never repeats, even for a node
# that was reloaded from storage.
_REVISIONS = itertools.count(1)


class NodeTable(Protocol):
    def get(self, node_id: str) -> Node | None: ...

    def put(self, node: Node) -> None:
        """Store a new or changed node; the owner persists what changed."""

    def all(self) -> Iterator[Node]: ...

    def delete(self, node_id: str) -> None:
        """Forget a node (a workflow retry re-creates it)."""


class MemoryNodeTable:
    """Nodes in a dict, recording which changed since the last `take_dirty`."""

    def __init__(self, nodes: list[Node] | None = None) -> None:
        self._nodes = {n.id: n for n in nodes or []}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()

    def get(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def put(self, node: Node) -> None:
        node.rev = next(_REVISIONS)
        self._nodes[node.id] = node
        self._dirty.add(node.id)
        self._deleted.discard(node.id)

    def delete(self, node_id: str) -> None:
        if self._nodes.pop(node_id, None) is not None:
            self._deleted.add(node_id)
        self._dirty.discard(node_id)

    def all(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def take_dirty(self) -> list[Node]:
        dirty = [self._nodes[i] for i in sorted(self._dirty)]
        self._dirty.clear()
        return dirty

    def take_deleted(self) -> list[str]:
        deleted = sorted(self._deleted)
        self._deleted.clear()
        return deleted

    def __len__(self) -> int:
        return len(self._nodes)


class MemoCache(Protocol):
    """Outputs saved by `memoize`, by cache name and key. The scheduler keeps them in its state store."""

    def get(self, cache: str, key: str) -> tuple[dict[str, Any], float] | None:
        """The saved outputs and when they were saved, or None."""

    def put(self, cache: str, key: str, outputs: dict[str, Any], node_id: str) -> None: ...


class MemoryMemoCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self.now = time.time

    def get(self, cache: str, key: str) -> tuple[dict[str, Any], float] | None:
        return self.entries.get((cache, key))

    def put(self, cache: str, key: str, outputs: dict[str, Any], node_id: str) -> None:
        self.entries[(cache, key)] = (outputs, self.now())


class Locks(Protocol):
    """Mutexes and semaphores shared by every workflow. The scheduler keeps them in its state store."""

    def try_acquire(self, keys: list[str], holder: str) -> str:
        """Take every lock in keys for holder, or none. Returns "" on success, else what blocks it."""

    def release(self, holder: str) -> None:
        """Give back every lock holder has."""


class MemoryLocks:
    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self.limits = dict(limits or {})
        self.holders: dict[str, list[str]] = {}

    def try_acquire(self, keys: list[str], holder: str) -> str:
        for key in keys:
            held = self.holders.get(key, [])
            if holder in held:
                continue
            limit = 1 if key.startswith("mutex/") else self.limits.get(key)
            if limit is None:
                return f"semaphore {key.removeprefix('semaphore/')!r} is not defined"
            if len(held) >= limit:
                return f"waiting for lock {key}"
        for key in keys:
            if holder not in self.holders.setdefault(key, []):
                self.holders[key].append(holder)
        return ""

    def release(self, holder: str) -> None:
        for held in self.holders.values():
            if holder in held:
                held.remove(holder)
