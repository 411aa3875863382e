"""Daemon steps (`daemon: true`): a pod that keeps running while the rest of its scope goes on.

The runtime reports when a daemon's container runs, with the address the other
steps reach it at (`daemon_started`). From then on the node is *daemoned*: its
phase stays Running, but its parent counts it as done (a steps group moves on,
DAG dependents start, `.Daemoned` holds) and `{{steps.X.ip}}` / `{{tasks.X.ip}}`
resolve. When the steps or dag node that owns its scope finishes, its daemons
are stopped and marked Succeeded. As in Argo, a daemoned pod that ends on its
own is Succeeded whatever its exit: its failure is ignored once it was up.
"""

from __future__ import annotations

from treadle.services.scheduler.engine.core import EngineBase
from treadle.services.scheduler.engine.model import Cancel, Decisions, Node, NodePhase, NodeType

# Node.progress keys: on a daemoned pod (and on the Retry node around it), and on the scope that owns daemons.
DAEMONED = "daemoned"
IP = "ip"
DAEMONS = "daemons"


def is_daemoned(node: Node) -> bool:
    return bool(node.progress.get(DAEMONED))


class DaemonsMixin(EngineBase):
    def daemon_started(self, node_id: str, attempt: int, ip: str) -> Decisions | None:
        """A daemon pod's container runs, reachable at ip. None when the attempt is unknown, stale or done."""
        node = self.nodes.get(node_id)
        if node is None or node.type != NodeType.POD or node.attempt != attempt or node.done:
            return None
        if not self.templates[node.template_name].get("daemon"):
            return None
        first = not is_daemoned(node)
        node.progress[DAEMONED] = True
        node.progress[IP] = ip
        self.nodes.put(node)
        if first:  # a relaunched daemon (a new attempt) only updates its address
            scope = self.nodes.get(node.boundary_id) if node.boundary_id else None
            if scope is not None:
                scope.progress[DAEMONS] = [*scope.progress.get(DAEMONS, []), node.id]
                self.nodes.put(scope)
            self._daemon_up(node)
        return self._drain()

    def _daemon_up(self, node: Node) -> None:
        """Let node's parent go on as if node were done; a Retry node is daemoned in turn."""
        parent = self.nodes.get(node.parent_id) if node.parent_id else None
        if parent is None or parent.done:
            return
        if parent.type == NodeType.RETRY:
            parent.progress[DAEMONED] = True
            parent.progress[IP] = node.progress.get(IP, "")
            self.nodes.put(parent)
            self._daemon_up(parent)
        else:
            self._child_done(parent, node)

    def _stop_daemons(self, scope: Node) -> None:
        """scope (a steps or dag node) is finishing: stop the daemons it owns, which succeed."""
        for pod_id in scope.progress.pop(DAEMONS, []):
            pod = self.nodes.get(pod_id)
            if pod is None or pod.done:
                continue
            self._out.cancels.append(Cancel(pod.id, pod.attempt, f"the scope of daemon {pod.name!r} ended"))
            self.state.pods_done += 1
            self._finish(pod, NodePhase.SUCCEEDED)
            self._release(pod)
