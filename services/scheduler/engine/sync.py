"""`synchronization`: mutexes and semaphores at workflow and template level.

A node whose template holds locks starts only once it has them all, and
gives them back when it finishes. A workflow with its own locks does not
start until it has them. Lock state lives outside the engine (the Locks
seam), since other workflows share it; the scheduler calls
`locks_released()` when some lock may have become free.
"""

from __future__ import annotations

from typing import Any

from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import Decisions, Node, NodePhase, NodeType


def lock_keys(sync: dict[str, Any] | None) -> list[str]:
    if not sync:
        return []
    keys = []
    for mutex in [sync.get("mutex"), *(sync.get("mutexes") or [])]:
        if mutex and mutex.get("name"):
            keys.append(f"mutex/{mutex['name']}")
    for semaphore in [sync.get("semaphore"), *(sync.get("semaphores") or [])]:
        ref = (semaphore or {}).get("configMapKeyRef") or {}
        if ref.get("name"):
            keys.append(f"semaphore/{ref['name']}/{ref.get('key', '')}".rstrip("/"))
    return sorted(set(keys))


class SyncMixin(EngineBase):
    def _holder(self, node: Node | None = None) -> str:
        return f"{self.state.name}/{node.id}" if node else self.state.name

    def _acquire_for(self, node: Node) -> bool:
        """True when node may start now; otherwise it waits (or errors when a semaphore is unknown)."""
        keys = lock_keys(self.templates[node.template_name].get("synchronization"))
        if not keys or self.locks is None:
            return True
        blocked = self.locks.try_acquire(keys, self._holder(node))
        if not blocked:
            node.progress["locks"] = keys
            node.message = ""
            self.nodes.put(node)
            return True
        if "is not defined" in blocked:
            self._finish(node, NodePhase.ERROR, blocked)
            return False
        node.phase = NodePhase.PENDING
        node.message = blocked.capitalize()
        if node.id not in self.state.lock_waiters:
            self.state.lock_waiters.append(node.id)
        self.nodes.put(node)
        return False

    def _release_for(self, node: Node) -> None:
        if node.progress.get("locks") and self.locks is not None:
            self.locks.release(self._holder(node))

    def locks_released(self) -> Decisions:
        """Some lock may be free: start what waited for one, the workflow itself first."""
        if self.state.waiting_for_lock:
            self._start_when_locked()
        self._retry_lock_waiters()
        return self._drain()

    def _retry_lock_waiters(self) -> bool:
        """Give waiting nodes another try; True when one of them started."""
        started = False
        waiting, self.state.lock_waiters = self.state.lock_waiters, []
        for node_id in waiting:
            node = self.nodes.get(node_id)
            if node is None or node.done:
                continue
            if self._acquire_for(node):
                self._begin(node)
                started = True
        return started

    def _workflow_locks(self) -> list[str]:
        return lock_keys(self.spec.get("synchronization"))

    def _begin(self, node: Node) -> None:
        """Start a node that has its locks."""
        if node.type == NodeType.POD:
            self._launch(node)
        else:
            node.phase = NodePhase.RUNNING
            self.nodes.put(node)
            self._start_composite(node)

    def _start_when_locked(self) -> None:
        raise NotImplementedError
