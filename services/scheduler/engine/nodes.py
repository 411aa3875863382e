"""Where the engine keeps nodes. The scheduler backs this with SQLite."""

from __future__ import annotations

import itertools
import marshal
import time
from collections.abc import Iterator
from typing import Any, Protocol

from treadle.services.scheduler.engine.model import RECORD_FIELDS, Node, NodeType

# One counter for every table in the process, so a revision never repeats, even for a node
# that was reloaded from storage.
_REVISIONS = itertools.count(1)


class NodeTable(Protocol):
    def get(self, node_id: str) -> Node | None: ...

    def read(self, node_id: str) -> Node | None:
        """The node, to read and not to change (a table may hand out a copy it does not keep)."""

    def put(self, node: Node) -> None:
        """Store a new or changed node; the owner persists what changed."""

    def all(self) -> Iterator[Node]: ...

    def delete(self, node_id: str) -> None:
        """Forget a node (a workflow retry re-creates it)."""


# What a table that packs should pack above (MemoryNodeTable(pack_above=...)): a table holding more
# nodes than this keeps its finished pods as their records' values (~0.5 KB instead of ~3 KB of
# objects), turned back into a Node when read, so that what a wide fan-out keeps in memory grows by
# a sixth as much per step. Smaller tables, which watchers read in full every few hundred
# milliseconds, keep every node as it is. Packing pays off only where nothing reads every node of a
# large live workflow on each poll: `all()` unpacks every packed node.
PACK_ABOVE = 4096


class _Packed:
    """A finished pod node as its record's values (marshal: ~3 us each way, ~0.5 KB), with its revision."""

    __slots__ = ("record", "rev")

    def __init__(self, record: bytes, rev: int) -> None:
        self.record = record
        self.rev = rev

    @classmethod
    def of(cls, node: Node) -> _Packed | None:
        """None when a value is not plain data (records are JSON: that never happens, but then it stays a Node)."""
        try:
            return cls(marshal.dumps(tuple([getattr(node, name) for name in RECORD_FIELDS])), node.rev)
        except ValueError:
            return None

    def unpack(self) -> Node:
        node = Node.from_record(dict(zip(RECORD_FIELDS, marshal.loads(self.record), strict=True)))
        node.rev = self.rev
        return node


def _packable(node: Node) -> bool:
    # Only finished pods: nothing changes them any more, and they have no children to keep.
    return node.type == NodeType.POD and node.done and not node.children


class MemoryNodeTable:
    """Nodes in a dict, recording which changed since the last `take_dirty`.

    With `pack_above` (PACK_ABOVE, say), once it holds more nodes than that, `take_dirty` packs
    finished pods (the caller persists what it returns); `get` unpacks one for as long as the next
    `take_dirty`, so that within one engine event a node read twice is the same object.
    """

    def __init__(self, nodes: list[Node] | None = None, *, pack_above: int | None = None) -> None:
        self._nodes: dict[str, Node | _Packed] = {n.id: n for n in nodes or []}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()
        self._pack_above = pack_above
        # Nodes unpacked since the last take_dirty; None until the table first packs (then it sweeps).
        self._unpacked: set[str] | None = None

    def get(self, node_id: str) -> Node | None:
        node = self._nodes.get(node_id)
        if isinstance(node, _Packed):
            node = self._nodes[node_id] = node.unpack()
            if self._unpacked is not None:
                self._unpacked.add(node_id)
        return node

    def read(self, node_id: str) -> Node | None:
        """Like get, but a packed node is unpacked as a copy and stays packed: for scans over many
        finished nodes (a loop's outputs), which would otherwise unpack them all at once."""
        node = self._nodes.get(node_id)
        return node.unpack() if isinstance(node, _Packed) else node

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
        """Every node, in the order they were first stored (packed ones unpacked as copies)."""
        return iter([n.unpack() if isinstance(n, _Packed) else n for n in self._nodes.values()])

    def take_dirty(self) -> list[Node]:
        dirty = [n for n in (self._nodes[i] for i in sorted(self._dirty)) if isinstance(n, Node)]
        self._dirty.clear()
        if self._pack_above is not None and len(self._nodes) > self._pack_above:
            self._pack(dirty)
        return dirty

    def take_deleted(self) -> list[str]:
        deleted = sorted(self._deleted)
        self._deleted.clear()
        return deleted

    @property
    def packed(self) -> int:
        return sum(1 for n in self._nodes.values() if isinstance(n, _Packed))

    def _pack(self, dirty: list[Node]) -> None:
        if self._unpacked is None:  # the first time: every finished pod so far
            candidates: list[Node] = [n for n in self._nodes.values() if isinstance(n, Node)]
        else:
            candidates = dirty + [n for n in (self._nodes.get(i) for i in self._unpacked) if isinstance(n, Node)]
        self._unpacked = set()
        for node in candidates:
            if _packable(node) and self._nodes.get(node.id) is node:
                packed = _Packed.of(node)
                if packed is not None:
                    self._nodes[node.id] = packed

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
