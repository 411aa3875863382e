"""Input artifacts as the executor stages them (step_io.stage_input) through a real ArtifactService.

Sources are real: an HTTP server on loopback, a bare git repository reached
through file://, and S3 (moto in its own process) as the default repository.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from artifacts_harness import TIMEOUT, TOKENS, header, serving, step_metadata
from artifacts_s3 import ACCESS_KEY, SECRET_KEY, S3Server
from artifacts_sources import GitRepo, HttpFiles, bare_git_repository, git, http_server
from minio import Minio

from treadle.archive import pack
from treadle.services.artifacts.catalog import load_catalog
from treadle.services.artifacts.client import upload_file
from treadle.services.artifacts.step_io import InputArtifactError, StepArtifacts, stage_input
from treadle.spec.convert import template_from_dict
from treadle.workflow.v1 import workflow_pb2


def artifact(**fields: object) -> workflow_pb2.Artifact:
    """An input artifact from its Argo (manifest) form."""
    template = template_from_dict({"name": "t", "inputs": {"artifacts": [{"name": "data", "path": "/in", **fields}]}})
    return template.inputs.artifacts[0]


@dataclass
class Stage:
    step: StepArtifacts
    root: Path
    count: int = 0

    async def __call__(self, art: workflow_pb2.Artifact) -> Path:
        """Stage art at a fresh destination and return it; raises like the executor would see."""
        self.count += 1
        dest = self.root / f"dest{self.count}" / "in"
        staging = self.root / f"staging{self.count}"
        staging.mkdir(parents=True)
        placed = await stage_input(self.step, art, dest, staging)
        assert placed == dest.exists() or os.path.lexists(dest)
        assert list(staging.iterdir()) == []  # scratch space is cleaned up
        return dest


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    root = tmp_path / "secrets"
    for name, values in {
        "web": {"user": "alice", "password": "s3cr3t-web-pass", "token": "tok-123-secret"},
        "s3-other": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY},
    }.items():
        (root / name).mkdir(parents=True)
        for key, value in values.items():
            (root / name / key).write_text(value + "\n")
    return root


@pytest.fixture
def with_stage(tmp_path: Path, s3_server: S3Server, bucket: str, s3_env: None, secrets_dir: Path) -> object:
    """Run body(stage) against a service whose default repository is the test bucket."""
    uri = f"s3://{bucket}?endpoint={s3_server.endpoint}&insecure=1&region=us-east-1"

    def run(body: object) -> None:
        async def main() -> None:
            catalog = load_catalog(uri, tokens=TOKENS, secrets_dir=secrets_dir)
            async with serving(catalog) as s:
                step = StepArtifacts(s.stub, "wf", "wf-pod-1", metadata=step_metadata("wf"))
                await body(Stage(step, tmp_path / "run"))  # type: ignore[operator]

        asyncio.run(main())

    return run


def tgz_of(tree: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in tree.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zip_of(tree: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in tree.items():
            zf.writestr(name, data)
    return out.getvalue()


# ----------------------------------------------------------------------------- http


def test_http_files_archives_and_auth(with_stage: object, secrets_dir: Path) -> None:
    files = HttpFiles(
        files={
            "/data.csv": b"a,b\n1,2\n",
            "/bundle.tgz": tgz_of({"bundle/x.txt": b"x", "bundle/y.txt": b"y"}),
            "/bundle.zip": zip_of({"z/one.txt": b"1"}),
            "/private/p.txt": b"private",
            "/token/t.txt": b"tokened",
        },
        basic=("alice", "s3cr3t-web-pass"),
        bearer="tok-123-secret",
    )

    async def body(stage: Stage) -> None:
        with http_server(files) as base:
            dest = await stage(
                artifact(http={"url": f"{base}/data.csv", "headers": [{"name": "X-Trace", "value": "7"}]})
            )
            assert dest.read_bytes() == b"a,b\n1,2\n"
            assert files.requests[-1][1]["X-Trace"] == "7"
            dest = await stage(artifact(http={"url": f"{base}/bundle.tgz"}))  # a tarball is unpacked
            assert sorted(p.name for p in dest.iterdir()) == ["x.txt", "y.txt"]
            dest = await stage(artifact(http={"url": f"{base}/bundle.tgz"}, archive={"none": {}}))
            assert tarfile.is_tarfile(dest)
            dest = await stage(artifact(http={"url": f"{base}/bundle.zip"}))  # a zip only when asked for
            assert zipfile.is_zipfile(dest)
            dest = await stage(artifact(http={"url": f"{base}/bundle.zip"}, archive={"zip": {}}))
            assert (dest / "one.txt").read_bytes() == b"1"
            basic = {
                "basicAuth": {
                    "usernameSecret": {"name": "web", "key": "user"},
                    "passwordSecret": {"name": "web", "key": "password"},
                }
            }
            dest = await stage(artifact(http={"url": f"{base}/private/p.txt", "auth": basic}))
            assert dest.read_bytes() == b"private"
            bearer = {"bearerToken": {"tokenSecret": {"name": "web", "key": "token"}}}
            dest = await stage(artifact(http={"url": f"{base}/token/t.txt", "auth": bearer}))
            assert dest.read_bytes() == b"tokened"
            with pytest.raises(InputArtifactError, match="answered HTTP 401") as caught:
                await stage(artifact(http={"url": f"{base}/private/p.txt?sig=abc"}))
            assert "sig=abc" not in str(caught.value)
            with pytest.raises(InputArtifactError, match="secret 'nope'"):
                await stage(
                    artifact(
                        http={
                            "url": f"{base}/private/p.txt",
                            "auth": {"bearerToken": {"tokenSecret": {"name": "nope", "key": "t"}}},
                        }
                    )
                )

    with_stage(body)  # type: ignore[operator]


def test_http_missing_artifact_names_artifact_and_source(with_stage: object) -> None:
    async def body(stage: Stage) -> None:
        with http_server(HttpFiles()) as base:
            url = f"{base}/missing.csv"
            with pytest.raises(InputArtifactError) as caught:
                await stage(artifact(http={"url": url}))
            assert str(caught.value) == f"input artifact 'data' from http {url}: not found"
            dest = await stage(artifact(http={"url": url}, optional=True))
            assert not os.path.lexists(dest)
            with pytest.raises(InputArtifactError, match="unreachable"):
                await stage(artifact(http={"url": "http://127.0.0.1:1/x"}))

    with_stage(body)  # type: ignore[operator]


def test_http_credentials_are_not_forwarded_on_redirects(with_stage: object) -> None:
    elsewhere = HttpFiles(files={"/landing.txt": b"landed"})

    async def body(stage: Stage) -> None:
        with http_server(elsewhere) as other:
            origin = HttpFiles(redirects={"/private/moved": f"{other}/landing.txt"}, basic=("alice", "s3cr3t-web-pass"))
            with http_server(origin) as base:
                basic = {
                    "basicAuth": {
                        "usernameSecret": {"name": "web", "key": "user"},
                        "passwordSecret": {"name": "web", "key": "password"},
                    }
                }
                dest = await stage(artifact(http={"url": f"{base}/private/moved", "auth": basic}))
                assert dest.read_bytes() == b"landed"
                assert "Authorization" in origin.requests[-1][1]
                assert "Authorization" not in elsewhere.requests[-1][1]

    with_stage(body)  # type: ignore[operator]


# ----------------------------------------------------------------------------- git


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return bare_git_repository(tmp_path / "git")


def test_git_revisions_depth_and_sub_path(with_stage: object, repo: GitRepo) -> None:
    async def body(stage: Stage) -> None:
        dest = await stage(artifact(git={"repo": repo.url}))
        assert (dest / "README").read_text() == "v2\n"
        tool = dest / "src" / "tool.sh"
        assert stat.S_IMODE(tool.stat().st_mode) == 0o755 and os.readlink(dest / "src" / "link") == "tool.sh"
        assert git("rev-parse", "HEAD", cwd=dest) == repo.second  # a real checkout, .git included
        dest = await stage(artifact(git={"repo": repo.url, "revision": "v1"}))
        assert (dest / "README").read_text() == "v1\n" and not (dest / "src").exists()
        dest = await stage(artifact(git={"repo": repo.url, "revision": "feature"}))
        assert (dest / "FEATURE").exists()
        dest = await stage(artifact(git={"repo": repo.url, "revision": repo.first, "depth": 1}))
        assert git("rev-parse", "HEAD", cwd=dest) == repo.first
        dest = await stage(artifact(git={"repo": repo.url, "depth": 1}))
        assert git("rev-list", "--count", "HEAD", cwd=dest) == "1"
        dest = await stage(artifact(git={"repo": repo.url}, subPath="src"))
        assert sorted(p.name for p in dest.iterdir()) == ["link", "tool.sh"]
        dest = await stage(artifact(git={"repo": repo.url}, subPath="README"))
        assert dest.read_text() == "v2\n"

    with_stage(body)  # type: ignore[operator]


def test_git_failures(with_stage: object, repo: GitRepo, tmp_path: Path) -> None:
    async def body(stage: Stage) -> None:
        with pytest.raises(InputArtifactError, match=f"from git {repo.url} at nope: not found"):
            await stage(artifact(git={"repo": repo.url, "revision": "nope"}))
        missing = (tmp_path / "nothing.git").as_uri()
        with pytest.raises(InputArtifactError, match="not found"):
            await stage(artifact(git={"repo": missing}))
        assert not os.path.lexists(await stage(artifact(git={"repo": missing}, optional=True)))
        for bad in ("ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/pwned", "/local/path"):
            with pytest.raises(InputArtifactError, match="not a repository URL"):
                await stage(artifact(git={"repo": bad}))
        with pytest.raises(InputArtifactError, match="must be a relative path"):
            await stage(artifact(git={"repo": repo.url}, subPath="../etc"))

    with_stage(body)  # type: ignore[operator]


# ----------------------------------------------------------------------------- s3


def test_s3_sources(with_stage: object, s3_server: S3Server, bucket: str) -> None:
    client = s3_server.client()
    assert isinstance(client, Minio)
    client.put_object(bucket, "shared/tool.csv", io.BytesIO(b"x,y\n"), 4)  # written by another tool
    for name in ("dir/a.txt", "dir/sub/b.txt"):
        client.put_object(bucket, f"shared/{name}", io.BytesIO(name.encode()), len(name))
    other = f"{bucket}-other"
    client.make_bucket(other)
    client.put_object(other, "elsewhere/e.txt", io.BytesIO(b"elsewhere"), 9)

    async def body(stage: Stage) -> None:
        dest = await stage(artifact(s3={"key": "shared/tool.csv"}))
        assert dest.read_bytes() == b"x,y\n"
        dest = await stage(artifact(s3={"key": "shared/dir"}))  # a "directory": every object under it
        assert (dest / "a.txt").read_bytes() == b"dir/a.txt" and (dest / "sub" / "b.txt").exists()
        dest = await stage(artifact(s3={"key": "shared"}, subPath="dir/sub/b.txt"))
        assert dest.read_bytes() == b"dir/sub/b.txt"
        secret = {
            "accessKeySecret": {"name": "s3-other", "key": "accesskey"},
            "secretKeySecret": {"name": "s3-other", "key": "secretkey"},
        }
        source = {"endpoint": s3_server.endpoint, "insecure": True, "bucket": other, "key": "elsewhere/e.txt", **secret}
        dest = await stage(artifact(s3=source))
        assert dest.read_bytes() == b"elsewhere"
        with pytest.raises(InputArtifactError, match="from s3 key shared/none: not found"):
            await stage(artifact(s3={"key": "shared/none"}))
        assert not os.path.lexists(await stage(artifact(s3={"key": "shared/none"}, optional=True)))

    with_stage(body)  # type: ignore[operator]


def test_s3_key_of_a_treadle_object_is_not_copied(with_stage: object, tmp_path: Path) -> None:
    src = tmp_path / "made.txt"
    src.write_text("made by a step")

    async def body(stage: Stage) -> None:
        step = stage.step
        info = await upload_file(
            step.stub, header(key="results/made.txt", suffix=""), src, timeout=TIMEOUT, metadata=step.metadata
        )
        before = [a.key async for a in _listing(stage)]
        dest = await stage(artifact(s3={"key": info.key}))
        assert dest.read_text() == "made by a step"
        assert [a.key async for a in _listing(stage)] == before  # nothing imported

    with_stage(body)  # type: ignore[operator]


async def _listing(stage: Stage) -> AsyncIterator[object]:
    from treadle.artifacts.v1 import artifacts_pb2 as pb

    page = await stage.step.stub.ListArtifacts(pb.ListArtifactsRequest(), timeout=TIMEOUT)
    for a in page.artifacts:
        yield a


# ----------------------------------------------------------------------------- stored (from) artifacts


def test_stored_artifacts_sub_path_archive_and_mode(with_stage: object, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "run").write_text("#!/bin/sh\n")
    (tree / "notes.txt").write_text("n")
    packed = pack(tree, tmp_path / "tree.tgz")

    async def body(stage: Stage) -> None:
        step = stage.step
        info = await upload_file(step.stub, header(), packed, timeout=TIMEOUT, metadata=step.metadata)
        stored = {"key": info.key, "sizeBytes": str(info.size_bytes), "sha256": info.sha256, "archive": "tgz"}
        dest = await stage(artifact(stored=stored))
        assert sorted(p.name for p in dest.iterdir()) == ["bin", "notes.txt"]
        dest = await stage(artifact(stored=stored, subPath="bin"))
        assert [p.name for p in dest.iterdir()] == ["run"]
        dest = await stage(artifact(stored=stored, archive={"none": {}}))
        assert tarfile.is_tarfile(dest)
        dest = await stage(artifact(stored=stored, mode=0o700, recurseMode=True))
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in [dest, *dest.rglob("*")])
        dest = await stage(artifact(stored=stored, mode=0o750))
        assert stat.S_IMODE(dest.stat().st_mode) == 0o750
        assert stat.S_IMODE((dest / "notes.txt").stat().st_mode) != 0o750
        with pytest.raises(InputArtifactError, match=r"subPath nope\): not found"):
            await stage(artifact(stored=stored, subPath="nope"))
        with pytest.raises(InputArtifactError, match="was not supplied"):
            await stage(artifact())
        assert not os.path.lexists(await stage(artifact(optional=True)))
        dest = await stage(artifact(raw={"data": "inline"}, mode=0o600))
        assert dest.read_text() == "inline" and stat.S_IMODE(dest.stat().st_mode) == 0o600

    with_stage(body)  # type: ignore[operator]


def test_http_link_local_destinations_are_refused(with_stage: object) -> None:
    async def body(stage: Stage) -> None:
        with pytest.raises(InputArtifactError, match="link-local"):
            await stage(artifact(http={"url": "http://169.254.169.254/latest/meta-data/"}))
        files = HttpFiles(redirects={"/to-metadata": "http://169.254.169.254/latest/meta-data/"})
        with http_server(files) as base:
            with pytest.raises(InputArtifactError, match="link-local"):
                await stage(artifact(http={"url": f"{base}/to-metadata"}))

    with_stage(body)  # type: ignore[operator]
