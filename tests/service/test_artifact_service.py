"""ArtifactService over a real grpc.aio server on loopback, through the generated stub."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from treadle.artifacts.v1 import artifacts_pb2 as pb
from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA, StepTokens
from treadle.errors import DataLoss, NotFound, PermissionDenied
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import ServiceBinding, create_server
from treadle.services.artifacts.client import download_to_file, upload_file
from treadle.services.artifacts.repository import ArtifactRepository
from treadle.services.artifacts.service import SERVICE_NAME, ArtifactServicer
from treadle.services.artifacts.stores import ArtifactStore, LocalStore, MemoryStore, open_store

if TYPE_CHECKING:
    from treadle.artifacts.v1.artifacts_pb2_grpc import ArtifactServiceAsyncStub

MiB = 1024 * 1024
TIMEOUT = 30.0
TOKENS = StepTokens(b"0123456789abcdef0123456789abcdef")


@dataclass
class Harness:
    stub: ArtifactServiceAsyncStub
    store: ArtifactStore


@contextlib.asynccontextmanager
async def serving(store: ArtifactStore) -> AsyncIterator[Harness]:
    servicer = ArtifactServicer(ArtifactRepository(store, tokens=TOKENS))
    binding = ServiceBinding(SERVICE_NAME, servicer, artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server)
    server = await create_server([binding])
    channel = open_channel(server.address)
    try:
        yield Harness(artifacts_pb2_grpc.ArtifactServiceStub(channel), store)
    finally:
        await channel.close()
        await server.server.stop(None)


StoreFactory = Callable[[Path], ArtifactStore]
STORES: dict[str, StoreFactory] = {"local": LocalStore, "memory": lambda _: MemoryStore()}


def run(store_factory: StoreFactory, tmp_path: Path, body: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving(store_factory(tmp_path / "repo")) as harness:
            await body(harness)

    asyncio.run(main())


def header(workflow: str = "wf", pod: str = "wf-pod-1", name: str = "out", suffix: str = ".tgz") -> pb.UploadHeader:
    return pb.UploadHeader(workflow=workflow, pod_name=pod, artifact_name=name, suffix=suffix)


async def raw_upload(
    stub: ArtifactServiceAsyncStub,
    messages: Iterable[pb.UploadArtifactRequest],
    metadata: tuple[tuple[str, str], ...] = (),
) -> pb.UploadArtifactResponse:
    async def requests() -> AsyncIterator[pb.UploadArtifactRequest]:
        for message in messages:
            yield message

    return await stub.UploadArtifact(requests(), timeout=TIMEOUT, metadata=metadata)


def upload_messages(
    h: pb.UploadHeader, chunks: list[bytes], sha256: str | None = None
) -> list[pb.UploadArtifactRequest]:
    digest = sha256 if sha256 is not None else hashlib.sha256(b"".join(chunks)).hexdigest()
    return [
        pb.UploadArtifactRequest(header=h),
        *(pb.UploadArtifactRequest(chunk=c) for c in chunks),
        pb.UploadArtifactRequest(trailer=pb.UploadTrailer(sha256=digest)),
    ]


async def expect_code(code: grpc.StatusCode, call: Awaitable[object]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details() or ""


async def stat_code(stub: ArtifactServiceAsyncStub, key: str) -> grpc.StatusCode:
    try:
        await stub.StatArtifact(pb.StatArtifactRequest(key=key), timeout=TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


stores = pytest.mark.parametrize("store_factory", list(STORES.values()), ids=list(STORES))


# ----------------------------------------------------------------------------- transfers


@stores
def test_multi_chunk_round_trip_with_digests_at_both_ends(store_factory: StoreFactory, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(5 * MiB + 123)
    src.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()

    async def body(h: Harness) -> None:
        info = await upload_file(h.stub, header(), src, timeout=TIMEOUT)
        assert (info.key, info.size_bytes, info.sha256) == ("wf/wf-pod-1/out.tgz", len(data), expected)

        dest = tmp_path / "copy" / "big.bin"
        dest.parent.mkdir()
        got = await download_to_file(h.stub, info.key, dest, timeout=TIMEOUT)
        assert got == info
        assert dest.read_bytes() == data
        assert os.listdir(dest.parent) == ["big.bin"]

        # On the wire: the info first, then chunks of at most 1 MiB.
        messages = [m async for m in h.stub.DownloadArtifact(pb.DownloadArtifactRequest(key=info.key), timeout=TIMEOUT)]
        assert messages[0].WhichOneof("part") == "info" and messages[0].info == info
        sizes = [len(m.chunk) for m in messages[1:]]
        assert max(sizes) <= MiB and sum(sizes) == len(data) and len(sizes) == 6

        stat = await h.stub.StatArtifact(pb.StatArtifactRequest(key=info.key), timeout=TIMEOUT)
        assert stat.info == info

    run(store_factory, tmp_path, body)


def test_transfers_hold_a_few_chunks_in_memory_whatever_the_size(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with src.open("wb") as f:
        for _ in range(32):
            f.write(os.urandom(MiB))

    async def body(h: Harness) -> None:
        # Client and server share this process, so the peak covers both ends.
        tracemalloc.start()
        try:
            info = await upload_file(h.stub, header(), src, timeout=TIMEOUT)
            upload_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            await download_to_file(h.stub, info.key, tmp_path / "copy.bin", timeout=TIMEOUT)
            download_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert upload_peak < 12 * MiB and download_peak < 12 * MiB, (upload_peak, download_peak)
        assert info.size_bytes == 32 * MiB

    run(LocalStore, tmp_path, body)


@stores
def test_empty_file_round_trip(store_factory: StoreFactory, tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")

    async def body(h: Harness) -> None:
        info = await upload_file(h.stub, header(suffix=""), src, timeout=TIMEOUT)
        assert info.size_bytes == 0 and info.sha256 == hashlib.sha256(b"").hexdigest()
        await download_to_file(h.stub, info.key, tmp_path / "empty.copy", timeout=TIMEOUT)
        assert (tmp_path / "empty.copy").read_bytes() == b""

    run(store_factory, tmp_path, body)


@stores
def test_digest_mismatch_is_data_loss_and_stores_nothing(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        chunks = [os.urandom(MiB), os.urandom(1000)]
        wrong = hashlib.sha256(b"something else").hexdigest()
        details = await expect_code(
            grpc.StatusCode.DATA_LOSS, raw_upload(h.stub, upload_messages(header(), chunks, wrong))
        )
        assert "nothing was stored" in details
        assert await stat_code(h.stub, "wf/wf-pod-1/out.tgz") == grpc.StatusCode.NOT_FOUND
        listing = await h.stub.ListArtifacts(pb.ListArtifactsRequest(prefix=""), timeout=TIMEOUT)
        assert list(listing.artifacts) == []

        # A failed overwrite leaves the previous object as it was.
        good = await raw_upload(h.stub, upload_messages(header(), [b"v1"]))
        await expect_code(grpc.StatusCode.DATA_LOSS, raw_upload(h.stub, upload_messages(header(), [b"v2"], wrong)))
        stat = await h.stub.StatArtifact(pb.StatArtifactRequest(key=good.info.key), timeout=TIMEOUT)
        assert stat.info == good.info

        if isinstance(h.store, LocalStore):
            assert os.listdir(h.store.root / "tmp") == []

    run(store_factory, tmp_path, body)


@stores
def test_oversize_chunk_is_invalid_argument(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        messages = upload_messages(header(), [b"a" * 10, b"b" * (MiB + 1)])
        details = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, raw_upload(h.stub, messages))
        assert str(MiB + 1) in details
        assert await stat_code(h.stub, "wf/wf-pod-1/out.tgz") == grpc.StatusCode.NOT_FOUND

    run(store_factory, tmp_path, body)


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([pb.UploadArtifactRequest(chunk=b"x")], id="no-header"),
        pytest.param(
            [pb.UploadArtifactRequest(header=header()), pb.UploadArtifactRequest(chunk=b"x")], id="no-trailer"
        ),
        pytest.param([*upload_messages(header(), [b"x"]), pb.UploadArtifactRequest(chunk=b"y")], id="after-trailer"),
        pytest.param(
            [pb.UploadArtifactRequest(header=header()), pb.UploadArtifactRequest(header=header())], id="two-headers"
        ),
        pytest.param(upload_messages(header(), [b"x"], "not-hex"), id="bad-digest"),
        pytest.param([], id="empty-stream"),
    ],
)
def test_malformed_upload_streams_are_refused(messages: list[pb.UploadArtifactRequest], tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT, raw_upload(h.stub, messages))
        listing = await h.stub.ListArtifacts(pb.ListArtifactsRequest(), timeout=TIMEOUT)
        assert list(listing.artifacts) == []

    run(LocalStore, tmp_path, body)


def test_download_of_a_missing_key_is_not_found(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        call = h.stub.DownloadArtifact(pb.DownloadArtifactRequest(key="wf/none"), timeout=TIMEOUT)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(NotFound):
            await download_to_file(h.stub, "wf/none", tmp_path / "x", timeout=TIMEOUT)
        assert not (tmp_path / "x").exists()

    run(LocalStore, tmp_path, body)


def test_receiver_detects_corrupted_bytes_and_keeps_no_partial_file(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        info = (await raw_upload(h.stub, upload_messages(header(), [b"precious data" * 1000]))).info
        assert isinstance(h.store, LocalStore)
        [stored] = [p for p in (h.store.root / "objects").rglob("*") if p.is_file()]
        with stored.open("r+b") as f:  # rot one data byte behind the header, at rest
            f.seek(-1, os.SEEK_END)
            f.write(b"!")

        dest = tmp_path / "in" / "data"
        dest.parent.mkdir()
        with pytest.raises(DataLoss, match="sha256"):
            await download_to_file(h.stub, info.key, dest, timeout=TIMEOUT)
        assert os.listdir(dest.parent) == []

    run(LocalStore, tmp_path, body)


def test_a_cancelled_download_releases_the_stored_object(tmp_path: Path) -> None:
    def open_objects(root: Path) -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
                link = os.readlink(f"/proc/self/fd/{fd}")
                if link.startswith(str(root)):
                    found.append(link)
        return found

    async def body(h: Harness) -> None:
        assert isinstance(h.store, LocalStore)
        info = (await raw_upload(h.stub, upload_messages(header(), [os.urandom(MiB)] * 4))).info
        call = h.stub.DownloadArtifact(pb.DownloadArtifactRequest(key=info.key), timeout=TIMEOUT)
        first = await call.read()
        assert isinstance(first, pb.DownloadArtifactResponse) and first.info == info
        assert open_objects(h.store.root)  # the server holds the object open mid-stream
        call.cancel()
        for _ in range(100):
            if not open_objects(h.store.root):
                break
            await asyncio.sleep(0.02)
        assert open_objects(h.store.root) == []

    run(LocalStore, tmp_path, body)


# ----------------------------------------------------------------------------- stat, list, delete


@stores
def test_stat_list_and_delete(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        keys = []
        for wf, pod, name in [
            ("wf", "p1", "a"),
            ("wf", "p1", "b"),
            ("wf", "p2", "a"),
            ("wf2", "p", "a"),
            ("wf", "p1", "c"),
        ]:
            info = (await raw_upload(h.stub, upload_messages(header(wf, pod, name, ""), [name.encode()]))).info
            keys.append(info.key)

        listed: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await h.stub.ListArtifacts(
                pb.ListArtifactsRequest(prefix="wf/", page_size=2, page_token=token), timeout=TIMEOUT
            )
            listed += [a.key for a in page.artifacts]
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert listed == ["wf/p1/a", "wf/p1/b", "wf/p1/c", "wf/p2/a"] and pages == 2
        everything = await h.stub.ListArtifacts(pb.ListArtifactsRequest(), timeout=TIMEOUT)
        assert [a.key for a in everything.artifacts] == sorted(keys)
        assert everything.artifacts[0].sha256 == hashlib.sha256(b"a").hexdigest()
        partial = await h.stub.ListArtifacts(pb.ListArtifactsRequest(prefix="wf/p"), timeout=TIMEOUT)
        assert len(partial.artifacts) == 4

        await h.stub.DeleteArtifact(pb.DeleteArtifactRequest(key="wf/p2/a"), timeout=TIMEOUT)
        assert await stat_code(h.stub, "wf/p2/a") == grpc.StatusCode.NOT_FOUND
        await h.stub.DeleteArtifact(pb.DeleteArtifactRequest(key="wf/p2/a"), timeout=TIMEOUT)  # missing: fine
        rest = await h.stub.ListArtifacts(pb.ListArtifactsRequest(prefix="wf/"), timeout=TIMEOUT)
        assert [a.key for a in rest.artifacts] == ["wf/p1/a", "wf/p1/b", "wf/p1/c"]

        await expect_code(
            grpc.StatusCode.INVALID_ARGUMENT,
            h.stub.ListArtifacts(pb.ListArtifactsRequest(page_token="%%%"), timeout=TIMEOUT),
        )

    run(store_factory, tmp_path, body)


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "wf/../../x", "wf\\..\\x", "wf//x", ""])
def test_traversal_keys_are_invalid_argument(key: str, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        for call in (
            h.stub.StatArtifact(pb.StatArtifactRequest(key=key), timeout=TIMEOUT),
            h.stub.DeleteArtifact(pb.DeleteArtifactRequest(key=key), timeout=TIMEOUT),
        ):
            await expect_code(grpc.StatusCode.INVALID_ARGUMENT, call)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in h.stub.DownloadArtifact(pb.DownloadArtifactRequest(key=key), timeout=TIMEOUT):
                pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert repr(key) in (caught.value.details() or "")

    run(LocalStore, tmp_path, body)
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize(
    "bad_header",
    [header(pod=".."), header(name="../../evil"), header(workflow="/abs"), header(suffix="/../x"), header(workflow="")],
)
def test_upload_headers_that_would_escape_are_invalid_argument(bad_header: pb.UploadHeader, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await expect_code(grpc.StatusCode.INVALID_ARGUMENT, raw_upload(h.stub, upload_messages(bad_header, [b"x"])))
        await expect_code(
            grpc.StatusCode.INVALID_ARGUMENT,
            h.stub.ListArtifacts(pb.ListArtifactsRequest(prefix="../"), timeout=TIMEOUT),
        )

    run(LocalStore, tmp_path, body)
    assert sorted(os.listdir(tmp_path)) == ["repo"]


# ----------------------------------------------------------------------------- step tokens


def test_step_token_scopes_writes_to_its_workflow(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    mine = ((STEP_TOKEN_METADATA, TOKENS.issue("wf", "wf-node", 1)),)

    async def body(h: Harness) -> None:
        info = await upload_file(h.stub, header("wf"), src, timeout=TIMEOUT, metadata=mine)
        assert info.key.startswith("wf/")
        other = await raw_upload(h.stub, upload_messages(header("other"), [b"y"]))  # trusted: no token

        await expect_code(
            grpc.StatusCode.PERMISSION_DENIED, raw_upload(h.stub, upload_messages(header("other"), [b"y"]), mine)
        )
        forged = ((STEP_TOKEN_METADATA, "forged.token"),)
        await expect_code(
            grpc.StatusCode.PERMISSION_DENIED, raw_upload(h.stub, upload_messages(header(), [b"y"]), forged)
        )
        await expect_code(
            grpc.StatusCode.PERMISSION_DENIED,
            h.stub.DeleteArtifact(pb.DeleteArtifactRequest(key=other.info.key), timeout=TIMEOUT, metadata=mine),
        )
        # Reads are not scoped: an input artifact may come from anywhere in the repository.
        stat = await h.stub.StatArtifact(pb.StatArtifactRequest(key=other.info.key), timeout=TIMEOUT, metadata=mine)
        assert stat.info == other.info
        await h.stub.DeleteArtifact(pb.DeleteArtifactRequest(key=info.key), timeout=TIMEOUT, metadata=mine)
        assert await stat_code(h.stub, info.key) == grpc.StatusCode.NOT_FOUND

        # The client helper turns the refusal into the domain error, even mid-stream.
        big = tmp_path / "big"
        big.write_bytes(os.urandom(3 * MiB))
        with pytest.raises(PermissionDenied, match="other"):
            await upload_file(h.stub, header("other"), big, timeout=TIMEOUT, metadata=mine)
        with pytest.raises(FileNotFoundError):
            await upload_file(h.stub, header("wf"), tmp_path / "missing", timeout=TIMEOUT, metadata=mine)

    run(LocalStore, tmp_path, body)


# ----------------------------------------------------------------------------- stores directly


def test_local_store_keeps_nested_keys_apart_and_lists_in_key_order(tmp_path: Path) -> None:
    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async def main() -> None:
        store = open_store((tmp_path / "repo").as_uri())
        assert isinstance(store, LocalStore)
        for key in ["a/b", "a/b/c", "a-b", "a/b%obj", "a/%25", "a0", "a/b/c/d", "ü/x"]:
            await store.put(key, chunks(key.encode()))
        page = await store.list("")
        assert [o.key for o in page.objects] == sorted(
            ["a/b", "a/b/c", "a-b", "a/b%obj", "a/%25", "a0", "a/b/c/d", "ü/x"]
        )
        assert (await store.stat("a/b")).size == 3
        async with await store.get("a/b/c") as reader:
            assert b"".join([c async for c in reader]) == b"a/b/c"
        after_first = await store.list("a/", page_size=1)
        second = await store.list("a/", page_size=10, page_token=after_first.next_page_token)
        assert [o.key for o in after_first.objects + second.objects] == ["a/%25", "a/b", "a/b%obj", "a/b/c", "a/b/c/d"]

        await store.delete("a/b/c/d")
        assert not (tmp_path / "repo" / "objects" / "a" / "b" / "c").exists()  # emptied directories go
        with pytest.raises(NotFound):
            await store.stat("a/b/c/d")

    asyncio.run(main())


def test_local_store_removes_the_temporary_object_when_the_stream_fails(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * MiB
        raise DataLoss("boom")

    async def main() -> None:
        store = LocalStore(tmp_path)
        with pytest.raises(DataLoss):
            await store.put("k", failing())
        assert os.listdir(tmp_path / "tmp") == []
        with pytest.raises(NotFound):
            await store.stat("k")

    asyncio.run(main())


def test_unknown_store_scheme_is_refused_without_leaking_credentials() -> None:
    from treadle.errors import InvalidSpec

    with pytest.raises(InvalidSpec) as caught:
        open_store("gopher://user:secret@host/bucket")
    assert "secret" not in str(caught.value) and "file://" in str(caught.value)
