"""Which nodes' logs to read, and how a stored log becomes lines."""

from __future__ import annotations

import codecs
import io
import tarfile
from collections.abc import AsyncIterator

from treadle.errors import NotFound
from treadle.workflow.v1 import workflow_pb2

# StoredArtifact.archive values of a tar+gzip object; anything else is read as plain text.
TARBALL_ARCHIVES = ("tgz", "tar.gz", "tar")


def pod_nodes(status: workflow_pb2.WorkflowStatus, selector: str = "") -> list[workflow_pb2.NodeStatus]:
    """The pod nodes to read, in start order. selector names one node by id, name or display name;
    a steps or dag node selects the pod nodes under it."""
    nodes = status.nodes
    if selector:
        matches = [n for n in nodes.values() if selector in (n.id, n.name, n.display_name)]
        if not matches:
            raise NotFound("node", selector)
        chosen = _with_descendants(status, [m.id for m in matches])
    else:
        chosen = set(nodes)
    pods = [nodes[node_id] for node_id in chosen if nodes[node_id].type == workflow_pb2.NODE_TYPE_POD]
    return sorted(pods, key=lambda n: (n.started_at.seconds, n.started_at.nanos, n.name, n.id))


def _with_descendants(status: workflow_pb2.WorkflowStatus, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in status.nodes:
            continue
        seen.add(node_id)
        stack.extend(status.nodes[node_id].children)
    return seen


async def log_lines(chunks: AsyncIterator[bytes], archive: str = "") -> AsyncIterator[str]:
    """The lines of a stored log, without their newlines. A tarball's files are read one after another."""
    if archive in TARBALL_ARCHIVES:
        async for line in _split(_untar(chunks)):
            yield line
    else:
        async for line in _split(chunks):
            yield line


async def _split(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


async def _untar(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Logs are small; a tarball is read whole because tarfile wants a seekable file.
    buffer = io.BytesIO()
    async for chunk in chunks:
        buffer.write(chunk)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:*") as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                if extracted is not None:
                    yield extracted.read()
