"""S3 input sources: the workflow's own repository (key only), another bucket, or another endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from treadle.errors import InvalidSpec
from treadle.secrets import SecretFiles
from treadle.workflow.v1 import workflow_pb2

from .._threads import blocking
from ..stores.base import ArtifactStore, ObjectReader
from ..stores.s3 import S3Store
from ..stores.s3_config import S3Config, S3Credentials, open_s3_store

MAX_DIRECTORY_OBJECTS = 100_000


@contextlib.asynccontextmanager
async def source_store(
    spec: workflow_pb2.S3Artifact, repository_store: ArtifactStore, secrets: SecretFiles
) -> AsyncIterator[ArtifactStore]:
    """The store holding spec's object: the repository's own for a key-only source, else one opened for it.

    A key-only source's key is a repository key (under the repository's prefix,
    as key-only outputs are). Another bucket of the repository's S3 endpoint is
    read with the repository's credentials unless the source names its own secrets.
    """
    named_creds = spec.HasField("access_key_secret") or spec.HasField("secret_key_secret")
    if not spec.endpoint and not spec.bucket and not named_creds:
        yield repository_store
        return
    if not spec.endpoint and isinstance(repository_store, S3Store) and not named_creds:
        yield repository_store.with_bucket(spec.bucket)  # a bucket's keys are absolute: no repository prefix
        return
    if not spec.bucket:
        raise InvalidSpec("an s3 source on another endpoint needs a bucket", field="s3.bucket")
    store = open_s3_store(
        S3Config(
            bucket=spec.bucket,
            endpoint=spec.endpoint or "s3.amazonaws.com",
            region=spec.region,
            secure=not (spec.HasField("insecure") and spec.insecure),
            credentials=_credentials(spec, secrets),
        )
    )
    try:
        yield store
    finally:
        await store.close()


async def open_object(store: ArtifactStore, key: str) -> ObjectReader:
    """Open key, also when another tool wrote it (an S3 object without a recorded digest)."""
    if isinstance(store, S3Store):
        return await store.open(store.prefix + key, key, require_digest=False)
    return await store.get(key)


async def download_directory(store: ArtifactStore, prefix: str, dest: Path) -> int:
    """Every object under prefix ("dir/"), as files below dest; the number of files."""
    count = 0
    token = ""
    while True:
        page = await store.list(prefix, page_token=token)
        for info in page.objects:
            count += 1
            if count > MAX_DIRECTORY_OBJECTS:
                raise InvalidSpec(f"holds more than {MAX_DIRECTORY_OBJECTS} objects", field="s3.key")
            relative = info.key[len(prefix) :]
            target = dest.joinpath(*relative.split("/"))  # keys have no '..' or empty segments
            await blocking(target.parent.mkdir, parents=True, exist_ok=True)
            async with await open_object(store, info.key) as reader:
                await _write(reader, target)
        token = page.next_page_token
        if not token:
            return count


async def _write(reader: ObjectReader, target: Path) -> None:
    f = await blocking(open, target, "xb")
    try:
        async for chunk in reader:
            await blocking(f.write, chunk)
    finally:
        await blocking(f.close)


def _credentials(spec: workflow_pb2.S3Artifact, secrets: SecretFiles) -> S3Credentials:
    if not (spec.HasField("access_key_secret") and spec.HasField("secret_key_secret")):
        if spec.HasField("access_key_secret") or spec.HasField("secret_key_secret"):
            raise InvalidSpec("accessKeySecret and secretKeySecret go together", field="s3")
        return S3Credentials("anonymous", "", "")
    access, secret = spec.access_key_secret, spec.secret_key_secret
    return S3Credentials(
        "files",
        str(secrets.path(access.name, access.key, field="s3.accessKeySecret")),
        str(secrets.path(secret.name, secret.key, field="s3.secretKeySecret")),
    )
