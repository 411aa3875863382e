"""The S3 store against a real S3 server (moto in server mode), through the real minio client."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from artifacts_s3 import ACCESS_KEY, SECRET_KEY, S3Server
from minio import Minio

from treadle.errors import DataLoss, FailedPrecondition, InvalidSpec, NotFound, Unavailable
from treadle.secrets import SecretFiles
from treadle.services.artifacts.stores import open_store
from treadle.services.artifacts.stores.s3 import S3Store
from treadle.services.artifacts.stores.s3_config import (
    S3Credentials,
    credentials_provider,
    open_s3_store,
    s3_config_from_mapping,
    s3_config_from_uri,
)
from treadle.services.artifacts.stores.s3_parts import MAX_PART_BYTES
from treadle.services.artifacts.stores.s3_parts import part_size as _part_size

MiB = 1024 * 1024
PART = 5 * MiB


def uri(server: S3Server, bucket: str, prefix: str = "repo", **params: str) -> str:
    query = "&".join(
        [f"endpoint={server.endpoint}", "insecure=1", "region=us-east-1", *(f"{k}={v}" for k, v in params.items())]
    )
    return f"s3://{bucket}/{prefix}?{query}"


def s3_store(server: S3Server, bucket: str, **params: str) -> S3Store:
    store = open_store(uri(server, bucket, partSize=str(PART), **params))
    assert isinstance(store, S3Store)
    return store


async def chunks(data: bytes, size: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def failing_after(data: bytes, error: Exception) -> AsyncIterator[bytes]:
    async for chunk in chunks(data):
        yield chunk
    raise error


async def read_all(store: S3Store, key: str) -> bytes:
    async with await store.get(key) as reader:
        return b"".join([c async for c in reader])


def raw_names(server: S3Server, bucket: str) -> list[str]:
    client = server.client()
    assert isinstance(client, Minio)
    return sorted(o.object_name or "" for o in client.list_objects(bucket, recursive=True))


def pending_multipart_uploads(server: S3Server, bucket: str) -> list[object]:
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{server.endpoint}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 3 * PART + 12345])
@pytest.mark.parametrize("announce", [False, True], ids=["digest-at-end", "digest-announced"])
def test_round_trip_keeps_bytes_digest_and_owner(
    s3_server: S3Server, bucket: str, s3_env: None, size: int, announce: bool
) -> None:
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()

    async def main() -> None:
        store = s3_store(s3_server, bucket)
        info = await store.put("wf/pod/out.tgz", chunks(data), sha256=sha if announce else "", owner="wf")
        assert (info.size, info.sha256, info.owner) == (size, sha, "wf")
        assert await store.stat("wf/pod/out.tgz") == info
        async with await store.get("wf/pod/out.tgz") as reader:
            assert reader.info == info
            got = [c async for c in reader]
        assert b"".join(got) == data and all(len(c) <= MiB for c in got)

    asyncio.run(main())
    # The object sits under the repository prefix, with its digest as metadata; no temporary object is left.
    assert raw_names(s3_server, bucket) == ["repo/wf/pod/out.tgz"]
    client = s3_server.client()
    assert isinstance(client, Minio)
    assert client.stat_object(bucket, "repo/wf/pod/out.tgz").metadata["x-amz-meta-sha256"] == sha
    assert pending_multipart_uploads(s3_server, bucket) == []


def test_overwrite_replaces_object_atomically(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    async def main() -> None:
        store = s3_store(s3_server, bucket)
        await store.put("k/a", chunks(b"old" * MiB))
        new = os.urandom(2 * PART + 5)
        info = await store.put("k/a", chunks(new))
        assert info.sha256 == hashlib.sha256(new).hexdigest()
        assert await read_all(store, "k/a") == new

    asyncio.run(main())


@pytest.mark.parametrize("size", [MiB, 3 * PART])
def test_failed_upload_leaves_nothing_behind(s3_server: S3Server, bucket: str, s3_env: None, size: int) -> None:
    async def main() -> None:
        store = s3_store(s3_server, bucket)
        await store.put("wf/p/keep", chunks(b"previous"))
        with pytest.raises(DataLoss, match="sender says"):
            await store.put("wf/p/keep", failing_after(os.urandom(size), DataLoss("sender says no")))
        assert await read_all(store, "wf/p/keep") == b"previous"
        with pytest.raises(DataLoss):
            await store.put("wf/p/new", failing_after(os.urandom(size), DataLoss("sender says no")))
        with pytest.raises(NotFound):
            await store.stat("wf/p/new")

    asyncio.run(main())
    assert raw_names(s3_server, bucket) == ["repo/wf/p/keep"]
    assert pending_multipart_uploads(s3_server, bucket) == []


@pytest.mark.parametrize("size", [10, 2 * PART + 1])
def test_announced_digest_that_does_not_match_stores_nothing(
    s3_server: S3Server, bucket: str, s3_env: None, size: int
) -> None:
    async def main() -> None:
        store = s3_store(s3_server, bucket)
        with pytest.raises(DataLoss, match="announced"):
            await store.put("wf/p/x", chunks(os.urandom(size)), sha256="0" * 64)
        with pytest.raises(NotFound):
            await store.stat("wf/p/x")

    asyncio.run(main())
    assert raw_names(s3_server, bucket) == []
    assert pending_multipart_uploads(s3_server, bucket) == []


def test_missing_and_foreign_objects(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    client = s3_server.client()
    assert isinstance(client, Minio)
    client.put_object(bucket, "repo/other/tool.csv", io.BytesIO(b"a,b\n"), 4)

    async def main() -> None:
        store = s3_store(s3_server, bucket)
        with pytest.raises(NotFound):
            await store.stat("no/such")
        with pytest.raises(NotFound):
            await store.get("no/such")
        await store.delete("no/such")  # deleting a missing object succeeds
        # An object written by another tool has no recorded digest: refused for transfer, readable for imports.
        with pytest.raises(FailedPrecondition, match="no recorded SHA-256"):
            await store.get("other/tool.csv")
        async with await store.open("repo/other/tool.csv", "other/tool.csv", require_digest=False) as reader:
            assert reader.info.sha256 == "" and b"".join([c async for c in reader]) == b"a,b\n"

    asyncio.run(main())


def test_list_pages_in_key_order_within_prefix(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    client = s3_server.client()
    assert isinstance(client, Minio)
    client.put_object(bucket, "outside/x", io.BytesIO(b"x"), 1)  # not under the repository prefix
    client.put_object(bucket, "repo/.treadle/tmp/abc", io.BytesIO(b"x"), 1)  # an upload in progress

    async def main() -> None:
        store = s3_store(s3_server, bucket)
        keys = [f"wf/p{i:02d}/a" for i in range(7)] + ["wf2/p/a"]
        for key in keys:
            await store.put(key, chunks(key.encode()), owner=key.split("/")[0])
        seen: list[str] = []
        token = ""
        while True:
            page = await store.list("wf/", page_size=3, page_token=token)
            assert len(page.objects) <= 3
            seen += [o.key for o in page.objects]
            token = page.next_page_token
            if not token:
                break
        assert seen == keys[:7]
        everything = await store.list("", page_size=100)
        assert [o.key for o in everything.objects] == keys
        assert all(o.size == len(o.key) for o in everything.objects)
        with pytest.raises(InvalidSpec):
            await store.list("", page_token="garbage!")

    asyncio.run(main())


def test_keys_are_validated_before_s3_sees_them(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    async def main() -> None:
        store = s3_store(s3_server, bucket)
        for bad in ("../x", "/abs", "a//b", ".treadle/tmp/x", "a\\b"):
            with pytest.raises(InvalidSpec):
                await store.put(bad, chunks(b"x"))
            with pytest.raises(InvalidSpec):
                await store.stat(bad)

    asyncio.run(main())


def test_part_sizes_grow_so_large_objects_fit_in_10000_parts() -> None:
    base = 16 * MiB
    assert _part_size(base, 1) == _part_size(base, 1000) == base
    assert _part_size(base, 1001) == 2 * base
    assert _part_size(base, 10_000) <= MAX_PART_BYTES
    assert sum(_part_size(base, n) for n in range(1, 10_001)) > 5 * 1024**4  # S3's object limit


def test_upload_memory_is_bounded_by_parts_not_object_size(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    size = 48 * MiB

    async def generated() -> AsyncIterator[bytes]:
        block = os.urandom(MiB)
        for _ in range(size // MiB):
            yield block

    async def main() -> None:
        store = s3_store(s3_server, bucket)
        tracemalloc.start()
        try:
            info = await store.put("wf/p/big", generated())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.size == size
        # Two parts in flight plus the one filling, plus copies while a part is joined.
        assert peak < 5 * PART + 4 * MiB, peak

    asyncio.run(main())


def test_unreachable_endpoint_is_unavailable(s3_env: None) -> None:
    from artifacts_s3 import free_port

    async def main() -> None:
        store = open_store(f"s3://bkt/p?endpoint=127.0.0.1:{free_port()}&insecure=1&region=us-east-1")
        with pytest.raises(Unavailable):
            await store.stat("a/b")
        with pytest.raises(Unavailable):
            await store.put("a/b", chunks(b"x"))

    asyncio.run(main())


# ----------------------------------------------------------------------------- configuration and credentials


def test_uri_config() -> None:
    c = s3_config_from_uri(urlsplit("s3://bkt/some/prefix/?endpoint=h:9000&region=eu-west-1&insecure=true"))
    assert (c.bucket, c.prefix, c.endpoint, c.region, c.secure) == ("bkt", "some/prefix/", "h:9000", "eu-west-1", False)
    assert c.credentials == S3Credentials("env", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    c = s3_config_from_uri(urlsplit("s3://bkt?credentialsDir=/run/creds&accessKeyFile=id"))
    assert (c.endpoint, c.secure, c.prefix) == ("s3.amazonaws.com", True, "")
    assert c.credentials == S3Credentials("files", "/run/creds/id", "/run/creds/secretkey")
    assert s3_config_from_uri(urlsplit("s3://bkt?anonymous=1")).credentials.source == "anonymous"
    for bad in ("s3://AKIA:secret@bkt/p", "s3://bkt?secretKey=x", "s3:///p", "s3://bkt?endpoint=http://h:1"):
        with pytest.raises(InvalidSpec) as caught:
            s3_config_from_uri(urlsplit(bad))
        assert "secret" not in str(caught.value).replace("secretKey", "") or "credentials" in str(caught.value)


def test_mapping_config_reads_argo_secret_selectors(tmp_path: Path) -> None:
    doc = {
        "endpoint": "minio:9000",
        "bucket": "artifacts",
        "insecure": True,
        "keyPrefix": "team-a",
        "accessKeySecret": {"name": "minio-creds", "key": "accesskey"},
        "secretKeySecret": {"name": "minio-creds", "key": "secretkey"},
    }
    c = s3_config_from_mapping(doc, SecretFiles(tmp_path), "repositories.minio.s3")
    assert (c.endpoint, c.bucket, c.prefix, c.secure) == ("minio:9000", "artifacts", "team-a/", False)
    assert c.credentials == S3Credentials(
        "files", str(tmp_path / "minio-creds/accesskey"), str(tmp_path / "minio-creds/secretkey")
    )
    with pytest.raises(InvalidSpec, match="not a valid name"):
        s3_config_from_mapping({**doc, "accessKeySecret": {"name": "..", "key": "x"}}, SecretFiles(tmp_path), "r")
    with pytest.raises(InvalidSpec, match="unknown s3 repository field"):
        s3_config_from_mapping({**doc, "secretKey": "inline"}, SecretFiles(tmp_path), "r")


def test_file_credentials_are_reread_when_rotated(tmp_path: Path) -> None:
    (tmp_path / "accesskey").write_text("AK1\n")
    (tmp_path / "secretkey").write_text("SK1\n")
    provider = credentials_provider(S3Credentials("files", str(tmp_path / "accesskey"), str(tmp_path / "secretkey")))
    assert provider is not None
    first = provider.retrieve()
    assert (first.access_key, first.secret_key) == ("AK1", "SK1")
    (tmp_path / "secretkey.new").write_text("SK2")
    os.replace(tmp_path / "secretkey.new", tmp_path / "secretkey")  # how Kubernetes swaps a Secret's files
    assert provider.retrieve().secret_key == "SK2"
    (tmp_path / "accesskey").unlink()
    with pytest.raises(FailedPrecondition, match="S3 access key") as caught:
        provider.retrieve()
    assert "SK2" not in str(caught.value)


def test_env_credentials_with_configured_names(
    s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_S3_ID", ACCESS_KEY)
    monkeypatch.setenv("MY_S3_SECRET", SECRET_KEY)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)

    async def main() -> None:
        store = s3_store(s3_server, bucket, accessKeyEnv="MY_S3_ID", secretKeyEnv="MY_S3_SECRET")
        await store.put("a/b", chunks(b"hello"))
        assert await read_all(store, "a/b") == b"hello"
        unset = open_s3_store(s3_config_from_uri(urlsplit(uri(s3_server, bucket))))
        with pytest.raises(FailedPrecondition, match="AWS_ACCESS_KEY_ID is not set"):
            await unset.stat("a/b")

    asyncio.run(main())


def test_a_download_closed_early_releases_its_connection(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    data = os.urandom(6 * MiB)

    async def main() -> None:
        store = s3_store(s3_server, bucket)
        await store.put("wf/p/big", chunks(data))
        for _ in range(20):  # more than the connection pool holds, so a leaked connection would block
            async with await store.get("wf/p/big") as reader:
                assert len(await anext(reader)) == MiB
        assert await read_all(store, "wf/p/big") == data

    asyncio.run(main())
