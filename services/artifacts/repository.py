"""The ArtifactService core for one repository: keys, transfer checks and step-token scope. No grpc here.

Step tokens: a call that carries one comes from a step's executor, which may
write (upload, delete) only under its own workflow's key prefix, plus explicit
keys (an output's ``s3: {key: ...}``, as Argo allows) as long as that does not
overwrite an object another workflow wrote under its own prefix. Reads are not
scoped, because an input artifact may name any key of the repository. A call
without a token is a trusted internal caller (scheduler, admission, the CLI
through the server); the network boundary is the service mesh's mTLS, not this.

Every object records the workflow that wrote it (its owner), which artifact GC
checks before deleting anything.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from treadle.auth import StepTokens
from treadle.errors import DataLoss, InvalidSpec, NotFound, PermissionDenied

from .keys import ArtifactTarget, KeyFormat, validate_key, validate_prefix
from .stores.base import CHUNK_BYTES, DEFAULT_PAGE_SIZE, ArtifactStore, ObjectInfo, ObjectPage, ObjectReader

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = CHUNK_BYTES
MAX_PAGE_SIZE = DEFAULT_PAGE_SIZE
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class UploadTrailer:
    """The end of an upload: the sender's hex SHA-256 of every chunk."""

    sha256: str


UploadPart = bytes | UploadTrailer


class ArtifactRepository:
    """Validates and scopes artifact calls, then streams through an ArtifactStore."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        key_format: KeyFormat | None = None,
        tokens: StepTokens | None = None,
        name: str = "",
    ) -> None:
        self.store = store
        self.key_format = key_format or KeyFormat()
        self.name = name
        self._tokens = tokens

    async def upload(
        self,
        target: ArtifactTarget,
        parts: AsyncIterator[UploadPart],
        *,
        token: str | None = None,
        key: str = "",
        sha256: str = "",
    ) -> ObjectInfo:
        """Store an upload's chunks under key, or else the key target renders to.

        parts is the chunks then exactly one trailer. The object becomes visible
        only if the trailer's digest matches the bytes received, and sha256 (a
        digest announced up front) when given; else DataLoss. The object's owner
        is target.workflow.
        """
        if sha256 and not _SHA256_HEX.fullmatch(sha256.lower()):
            raise InvalidSpec(f"{sha256!r} is not a hex SHA-256", field="header.sha256")
        key = validate_key(key, field="header.key") if key else self.key_format.render(target)
        self.authorize_workflow(token, target.workflow)
        scope = self._scope(token)
        if scope is not None and not self._in_prefix(scope, key):
            await self._check_explicit_overwrite(scope, key)
        info = await self.store.put(
            key, _verified_chunks(key, parts, sha256.lower()), sha256=sha256.lower(), owner=target.workflow
        )
        log.info("stored artifact %s in %s (%d bytes, sha256 %s)", key, self.label, info.size, info.sha256)
        return info

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, owner: str, sha256: str = "") -> ObjectInfo:
        """Store bytes the service produced itself (imports): no trailer, the store computes the digest."""
        info = await self.store.put(validate_key(key), chunks, sha256=sha256, owner=owner)
        log.info("stored artifact %s in %s (%d bytes, sha256 %s)", key, self.label, info.size, info.sha256)
        return info

    @property
    def label(self) -> str:
        return f"repository {self.name!r}" if self.name else "the default repository"

    async def download(self, key: str) -> ObjectReader:
        """Open an object; its chunks are at most MAX_CHUNK_BYTES whatever the driver yields."""
        reader = await self.store.get(validate_key(key))
        return ObjectReader(reader.info, _rechunked(reader), on_close=reader.aclose)

    async def stat(self, key: str) -> ObjectInfo:
        return await self.store.stat(validate_key(key))

    async def list(self, prefix: str, page_size: int = 0, page_token: str = "") -> ObjectPage:
        validate_prefix(prefix)
        if page_size < 0:
            raise InvalidSpec(f"must not be negative, got {page_size}", field="page_size")
        return await self.store.list(prefix, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), page_token)

    async def delete(self, key: str, *, token: str | None = None) -> None:
        self._check_write(self._scope(token), validate_key(key))
        await self.store.delete(key)
        log.info("deleted artifact %s", key)

    def authorize_workflow(self, token: str | None, workflow: str) -> None:
        """Refuse a step token that is not for workflow (a call without a token is trusted)."""
        scope = self._scope(token)
        if scope is not None and scope != workflow:
            raise PermissionDenied(f"step token for workflow {scope!r} cannot act for workflow {workflow!r}")

    def _scope(self, token: str | None) -> str | None:
        """The workflow a step token limits writes to; None for a trusted caller without one."""
        if token is None:
            return None
        if self._tokens is None:
            raise PermissionDenied("this artifact service does not accept step tokens")
        return self._tokens.verify(token).workflow

    def _check_write(self, scope: str | None, key: str) -> None:
        if scope is not None and not self._in_prefix(scope, key):
            raise PermissionDenied(f"step token for workflow {scope!r} cannot write artifact key {key!r}")

    def _in_prefix(self, workflow: str, key: str) -> bool:
        return key.startswith(self.key_format.workflow_prefix(workflow))

    async def _check_explicit_overwrite(self, scope: str, key: str) -> None:
        """A step may write an explicit key, but not over another workflow's own (key-format) object."""
        try:
            existing = await self.store.stat(key)
        except NotFound:
            return
        owner = existing.owner
        if owner and owner != scope and self._in_prefix(owner, key):
            raise PermissionDenied(
                f"step token for workflow {scope!r} cannot overwrite artifact key {key!r} of workflow {owner!r}"
            )


async def _verified_chunks(key: str, parts: AsyncIterator[UploadPart], announced: str = "") -> AsyncIterator[bytes]:
    """Yield the upload's chunks; raise before the end (so the store discards them) if anything is off."""
    digest = hashlib.sha256()
    size = 0
    trailer: UploadTrailer | None = None
    async for part in parts:
        if trailer is not None:
            raise InvalidSpec("no message may follow the trailer", field="trailer")
        if isinstance(part, UploadTrailer):
            trailer = part
            continue
        if len(part) > MAX_CHUNK_BYTES:
            raise InvalidSpec(f"a chunk of {len(part)} bytes is larger than {MAX_CHUNK_BYTES} bytes", field="chunk")
        digest.update(part)
        size += len(part)
        yield part
    if trailer is None:
        raise InvalidSpec("the upload ended without a trailer", field="trailer")
    expected = trailer.sha256.lower()
    if not _SHA256_HEX.fullmatch(expected):
        raise InvalidSpec(f"{trailer.sha256!r} is not a hex SHA-256", field="trailer.sha256")
    if expected != digest.hexdigest():
        raise DataLoss(
            f"artifact {key!r}: received {size} bytes with sha256 {digest.hexdigest()}, "
            f"but the sender computed {expected}; nothing was stored"
        )
    if announced and announced != expected:
        raise DataLoss(f"artifact {key!r}: the trailer's sha256 {expected} differs from the header's {announced}")


async def _rechunked(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if len(chunk) <= MAX_CHUNK_BYTES:
            yield chunk
            continue
        view = memoryview(chunk)
        for start in range(0, len(chunk), MAX_CHUNK_BYTES):
            yield bytes(view[start : start + MAX_CHUNK_BYTES])
