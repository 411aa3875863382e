"""ArtifactService with S3 and named repositories (artifactRepositoryRef), over gRPC; credentials never leak."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml
from artifacts_harness import TIMEOUT, TOKENS, MiB, header, serving, step_metadata
from artifacts_s3 import ACCESS_KEY, SECRET_KEY, S3Server
from minio import Minio

from treadle.artifacts.v1 import artifacts_pb2 as pb
from treadle.config import ServerConfig
from treadle.errors import InvalidSpec, NotFound, PermissionDenied
from treadle.services.artifacts.catalog import load_catalog
from treadle.services.artifacts.client import download_to_file, upload_file
from treadle.services.artifacts.setup import REPOSITORIES_ENV, build


def write_repositories(tmp_path: Path, s3_server: S3Server, bucket: str) -> Path:
    secrets = tmp_path / "secrets" / "s3-creds"
    secrets.mkdir(parents=True)
    (secrets / "accesskey").write_text(ACCESS_KEY + "\n")
    (secrets / "secretkey").write_text(SECRET_KEY + "\n")
    doc = {
        "secretsDir": str(tmp_path / "secrets"),
        "repositories": {
            "minio": {
                "archiveLogs": True,
                "s3": {
                    "endpoint": s3_server.endpoint,
                    "bucket": bucket,
                    "region": "us-east-1",
                    "insecure": True,
                    "keyFormat": "runs/{{workflow.name}}/{{pod.name}}/{{artifact.name}}",
                    "accessKeySecret": {"name": "s3-creds", "key": "accesskey"},
                    "secretKeySecret": {"name": "s3-creds", "key": "secretkey"},
                },
            },
            "scratch": {"uri": (tmp_path / "scratch").as_uri()},
        },
    }
    path = tmp_path / "repositories.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_named_repositories_route_every_call(tmp_path: Path, s3_server: S3Server, bucket: str) -> None:
    repositories = write_repositories(tmp_path, s3_server, bucket)
    catalog = load_catalog((tmp_path / "default").as_uri(), repositories_file=repositories, tokens=TOKENS)
    src = tmp_path / "data.bin"
    data = os.urandom(7 * MiB + 3)
    src.write_bytes(data)

    async def main() -> None:
        async with serving(catalog) as s:
            meta = step_metadata("wf")
            info = await upload_file(s.stub, header(repository="minio"), src, timeout=TIMEOUT, metadata=meta)
            assert (info.key, info.repository) == ("runs/wf/wf-pod-1/out.tgz", "minio")
            assert info.sha256 == hashlib.sha256(data).hexdigest()
            dest = tmp_path / "back.bin"
            await download_to_file(s.stub, info.key, dest, repository="minio", timeout=TIMEOUT, metadata=meta)
            assert dest.read_bytes() == data
            # Not in the default repository, nor in the other named one.
            for name in ("", "scratch"):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await s.stub.StatArtifact(pb.StatArtifactRequest(key=info.key, repository=name), timeout=TIMEOUT)
                assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            listed = await s.stub.ListArtifacts(pb.ListArtifactsRequest(prefix="runs/", repository="minio"))
            assert [(a.key, a.repository) for a in listed.artifacts] == [(info.key, "minio")]
            # The step token's scope follows the repository's key format.
            with pytest.raises(PermissionDenied):
                await upload_file(s.stub, header("other", repository="minio"), src, timeout=TIMEOUT, metadata=meta)
            with pytest.raises(NotFound, match="artifact repository 'nope'"):
                await upload_file(s.stub, header(repository="nope"), src, timeout=TIMEOUT, metadata=meta)
            described = await s.stub.GetRepository(pb.GetRepositoryRequest(name="minio"), timeout=TIMEOUT)
            assert described.key_format == "runs/{{workflow.name}}/{{pod.name}}/{{artifact.name}}"
            assert bucket in described.location and s3_server.endpoint in described.location

    asyncio.run(main())
    client = s3_server.client()
    assert isinstance(client, Minio)
    assert [o.object_name for o in client.list_objects(bucket, recursive=True)] == ["runs/wf/wf-pod-1/out.tgz"]


def test_key_only_outputs_use_the_exact_key(tmp_path: Path, s3_server: S3Server, bucket: str, s3_env: None) -> None:
    src = tmp_path / "report.txt"
    src.write_text("report")
    catalog = load_catalog(f"s3://{bucket}?endpoint={s3_server.endpoint}&insecure=1&region=us-east-1", tokens=TOKENS)

    async def main() -> None:
        async with serving(catalog) as s:
            mine, theirs = step_metadata("wf"), step_metadata("wf2")
            info = await upload_file(s.stub, header(key="reports/latest.txt"), src, timeout=TIMEOUT, metadata=mine)
            assert info.key == "reports/latest.txt"
            # A shared explicit key may be overwritten by another workflow, as in Argo ...
            await upload_file(s.stub, header("wf2", key="reports/latest.txt"), src, timeout=TIMEOUT, metadata=theirs)
            # ... but not another workflow's own object under its key prefix.
            own = await upload_file(s.stub, header(), src, timeout=TIMEOUT, metadata=mine)
            with pytest.raises(PermissionDenied, match="cannot overwrite"):
                await upload_file(s.stub, header("wf2", key=own.key), src, timeout=TIMEOUT, metadata=theirs)
            with pytest.raises(InvalidSpec):
                await upload_file(s.stub, header(key="../escape"), src, timeout=TIMEOUT, metadata=mine)

    asyncio.run(main())


def test_digest_mismatch_over_the_wire_stores_nothing_in_s3(s3_server: S3Server, bucket: str, s3_env: None) -> None:
    catalog = load_catalog(f"s3://{bucket}?endpoint={s3_server.endpoint}&insecure=1&region=us-east-1", tokens=TOKENS)
    data = os.urandom(20 * MiB)

    async def main() -> None:
        async with serving(catalog) as s:
            for announced in ("", hashlib.sha256(b"other").hexdigest()):

                async def requests(announced: str = announced) -> AsyncIterator[pb.UploadArtifactRequest]:
                    yield pb.UploadArtifactRequest(header=header(sha256=announced))
                    for start in range(0, len(data), MiB):
                        yield pb.UploadArtifactRequest(chunk=data[start : start + MiB])
                    yield pb.UploadArtifactRequest(trailer=pb.UploadTrailer(sha256="0" * 64))

                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await s.stub.UploadArtifact(requests(), timeout=TIMEOUT)
                assert caught.value.code() == grpc.StatusCode.DATA_LOSS

    asyncio.run(main())
    client = s3_server.client()
    assert isinstance(client, Minio)
    assert list(client.list_objects(bucket, recursive=True)) == []


def test_credentials_never_reach_logs_or_responses(
    tmp_path: Path, s3_server: S3Server, bucket: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    repositories = write_repositories(tmp_path, s3_server, bucket)
    # Also a repository whose credentials are wrong for its bucket, to exercise error paths.
    doc = yaml.safe_load(repositories.read_text())
    doc["repositories"]["broken"] = {"s3": {**doc["repositories"]["minio"]["s3"], "bucket": "no-such-bucket"}}
    repositories.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv(REPOSITORIES_ENV, str(repositories))
    app = build(ServerConfig(data_dir=tmp_path / "data"), TOKENS)
    src = tmp_path / "f"
    src.write_bytes(b"payload")
    seen: list[str] = []

    async def main() -> None:
        async with serving(app.catalog) as s:
            meta = step_metadata("wf")
            seen.append(str(await upload_file(s.stub, header(repository="minio"), src, timeout=TIMEOUT, metadata=meta)))
            for name in ("", "minio", "scratch", "broken"):
                seen.append(str(await s.stub.GetRepository(pb.GetRepositoryRequest(name=name), timeout=TIMEOUT)))
            for call in (
                s.stub.StatArtifact(pb.StatArtifactRequest(key="a/b", repository="broken"), timeout=TIMEOUT),
                s.stub.StatArtifact(pb.StatArtifactRequest(key="a/b", repository="minio"), timeout=TIMEOUT),
                s.stub.ListArtifacts(pb.ListArtifactsRequest(repository="broken"), timeout=TIMEOUT),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                seen.append(f"{caught.value.code()} {caught.value.details()} {caught.value.debug_error_string()}")
            try:
                await upload_file(s.stub, header(repository="broken"), src, timeout=TIMEOUT, metadata=meta)
            except Exception as exc:
                seen.append(repr(exc))

    asyncio.run(main())
    text = "\n".join(seen) + "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "no-such-bucket" in text  # the errors were seen ...
    assert SECRET_KEY not in text and ACCESS_KEY not in text  # ... and carry no credential
    assert SECRET_KEY not in repr(app.catalog.get("minio").store.__dict__)


def test_repositories_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    for doc, field in (
        ({"repositories": {"a": {"s3": {"bucket": "b"}, "uri": "memory://"}}}, "repositories.a"),
        ({"repositories": {"a": {"gcs": {}}}}, "repositories.a"),
        ({"default": "missing", "repositories": {}}, "default"),
        ({"secrets": "/x"}, "artifactRepositories"),
        ({"repositories": {"a": {"uri": "memory://?keyFormat={{pod.name}}"}}}, "keyFormat"),
    ):
        path.write_text(yaml.safe_dump(doc))
        with pytest.raises(InvalidSpec) as caught:
            load_catalog("memory://", repositories_file=path)
        assert caught.value.violations[0].field == field, caught.value


def test_default_can_be_a_named_repository(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"default": "a", "repositories": {"a": {"uri": "memory://"}}}))
    catalog = load_catalog("file:///nonexistent", repositories_file=path)
    assert catalog.default.store is catalog.get("a").store
    assert catalog.names() == ["", "a"]
