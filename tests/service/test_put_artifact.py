"""PutArtifact (a whole object of at most 1 MiB in one message), upload_file's choice of it, and the local
store's one-trip write, over a real grpc.aio server on loopback through the generated stub."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from treadle import errors
from treadle.artifacts.v1 import artifacts_pb2 as pb
from treadle.artifacts.v1 import artifacts_pb2_grpc
from treadle.auth import STEP_TOKEN_METADATA
from treadle.grpcutil.channels import open_channel
from treadle.grpcutil.server import ServiceBinding, create_server
from treadle.grpcutil.status import error_from_rpc
from treadle.services.artifacts.client import download_to_file, put_small, upload_file
from treadle.services.artifacts.repository import ArtifactRepository
from treadle.services.artifacts.service import SERVICE_NAME, ArtifactServicer
from treadle.services.artifacts.stores import ArtifactStore, LocalStore
from treadle.services.artifacts.stores.base import CHUNK_BYTES

# The shared helpers live in test_artifact_service.py; pytest's importlib mode does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from test_artifact_service import (
    STORES,
    TIMEOUT,
    TOKENS,
    Harness,
    MiB,
    StoreFactory,
    expect_code,
    header,
    raw_upload,
    stat_code,
    stores,
    upload_messages,
)

KEY = "wf/wf-pod-1/out.tgz"


class MethodLog:
    """Records the method of every unary and client-streaming call made on a channel it intercepts."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        # grpc.aio files an interceptor under the first kind it is, so each kind gets its own.
        return [_Unary(self.methods), _ClientStream(self.methods)]


class _Unary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, methods: list[str]) -> None:
        self.methods = methods

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.methods.append(_name(details.method))
        return await continuation(details, request)


class _ClientStream(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, methods: list[str]) -> None:
        self.methods = methods

    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        self.methods.append(_name(details.method))
        return await continuation(details, request_iterator)


def _name(method: str | bytes) -> str:
    text = method.decode() if isinstance(method, bytes) else method
    return text.rsplit("/", 1)[-1]


@contextlib.asynccontextmanager
async def serving(store: ArtifactStore, calls: MethodLog) -> AsyncIterator[Harness]:
    servicer = ArtifactServicer(ArtifactRepository(store, tokens=TOKENS))
    binding = ServiceBinding(SERVICE_NAME, servicer, artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server)
    server = await create_server([binding])
    channel = open_channel(server.address, interceptors=calls.interceptors())
    try:
        yield Harness(artifacts_pb2_grpc.ArtifactServiceStub(channel), store)
    finally:
        await channel.close()
        await server.server.stop(None)


Body = Callable[[Harness, MethodLog], Awaitable[None]]


def run(store_factory: StoreFactory, tmp_path: Path, body: Body) -> None:
    async def main() -> None:
        calls = MethodLog()
        async with serving(store_factory(tmp_path / "repo"), calls) as harness:
            await body(harness, calls)

    asyncio.run(main())


def put_request(data: bytes, sha256: str | None = None, h: pb.UploadHeader | None = None) -> pb.PutArtifactRequest:
    digest = hashlib.sha256(data).hexdigest() if sha256 is None else sha256
    return pb.PutArtifactRequest(header=header() if h is None else h, data=data, sha256=digest)


async def put(
    h: Harness, request: pb.PutArtifactRequest, metadata: tuple[tuple[str, str], ...] = ()
) -> pb.PutArtifactResponse:
    return await h.stub.PutArtifact(request, timeout=TIMEOUT, metadata=metadata)


async def refused(call: Awaitable[object]) -> tuple[grpc.StatusCode, errors.TreadleError]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), error_from_rpc(caught.value)


async def read(h: Harness, key: str) -> bytes:
    messages = [m async for m in h.stub.DownloadArtifact(pb.DownloadArtifactRequest(key=key), timeout=TIMEOUT)]
    assert messages[0].WhichOneof("part") == "info"
    return b"".join(m.chunk for m in messages[1:])


async def listing(h: Harness) -> list[str]:
    found = await h.stub.ListArtifacts(pb.ListArtifactsRequest(prefix=""), timeout=TIMEOUT)
    return [a.key for a in found.artifacts]


def local_leftovers(store: ArtifactStore) -> list[str]:
    """Files in a local store's tmp dir (uploads in progress, or left behind)."""
    return os.listdir(store.root / "tmp") if isinstance(store, LocalStore) else []


# ----------------------------------------------------------------------------- PutArtifact


@stores
@pytest.mark.parametrize("size", [0, 1, 1000, MiB], ids=["empty", "one-byte", "small", "one-MiB"])
def test_put_stores_the_object_and_it_downloads_back(store_factory: StoreFactory, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()

    async def body(h: Harness, calls: MethodLog) -> None:
        response = await put(h, put_request(data))
        info = response.info
        assert (info.key, info.size_bytes, info.sha256) == (KEY, size, digest)
        stat = await h.stub.StatArtifact(pb.StatArtifactRequest(key=KEY), timeout=TIMEOUT)
        assert stat.info == info
        assert await read(h, KEY) == data
        assert await listing(h) == [KEY]
        assert local_leftovers(h.store) == []

    run(store_factory, tmp_path, body)


@stores
def test_put_overwrites_an_object_and_honours_an_explicit_key(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness, calls: MethodLog) -> None:
        await put(h, put_request(b"first"))
        second = await put(h, put_request(b"second"))
        assert await read(h, KEY) == b"second" and second.info.size_bytes == 6
        explicit = pb.UploadHeader(workflow="wf", pod_name="p", artifact_name="a", key="my/own/key.txt")
        info = (await put(h, put_request(b"keyed", h=explicit))).info
        assert info.key == "my/own/key.txt"
        assert await read(h, "my/own/key.txt") == b"keyed"

    run(store_factory, tmp_path, body)


@stores
def test_put_of_more_than_one_mib_is_invalid_argument_naming_data(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness, calls: MethodLog) -> None:
        code, error = await refused(put(h, put_request(b"x" * (MiB + 1))))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert isinstance(error, errors.InvalidSpec)
        assert [v.field for v in error.violations] == ["data"]
        assert str(MiB + 1) in str(error) and str(CHUNK_BYTES) in str(error)
        assert await stat_code(h.stub, KEY) == grpc.StatusCode.NOT_FOUND
        assert await listing(h) == []

    run(store_factory, tmp_path, body)


@stores
def test_put_without_a_digest_is_invalid_argument_naming_sha256(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness, calls: MethodLog) -> None:
        code, error = await refused(put(h, put_request(b"data", sha256="")))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert isinstance(error, errors.InvalidSpec)
        assert [v.field for v in error.violations] == ["sha256"]
        assert await stat_code(h.stub, KEY) == grpc.StatusCode.NOT_FOUND

    run(store_factory, tmp_path, body)


def test_put_with_a_malformed_digest_is_invalid_argument_naming_sha256(tmp_path: Path) -> None:
    async def body(h: Harness, calls: MethodLog) -> None:
        code, error = await refused(put(h, put_request(b"data", sha256="not-hex")))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert isinstance(error, errors.InvalidSpec)
        assert [v.field for v in error.violations] == ["sha256"]

    run(LocalStore, tmp_path, body)


@stores
@pytest.mark.parametrize("size", [0, 1000, MiB], ids=["empty", "small", "one-MiB"])
def test_put_with_a_wrong_digest_is_data_loss_and_stores_nothing(
    store_factory: StoreFactory, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    wrong = hashlib.sha256(b"something else").hexdigest()

    async def body(h: Harness, calls: MethodLog) -> None:
        code, error = await refused(put(h, put_request(data, sha256=wrong)))
        assert code == grpc.StatusCode.DATA_LOSS
        assert isinstance(error, errors.DataLoss)
        assert "nothing was stored" in str(error)
        assert await stat_code(h.stub, KEY) == grpc.StatusCode.NOT_FOUND
        assert await listing(h) == []
        assert local_leftovers(h.store) == []

        # A failed overwrite leaves the previous object as it was.
        good = (await put(h, put_request(b"v1"))).info
        code, _ = await refused(put(h, put_request(b"v2", sha256=wrong)))
        assert code == grpc.StatusCode.DATA_LOSS
        assert (await h.stub.StatArtifact(pb.StatArtifactRequest(key=KEY), timeout=TIMEOUT)).info == good
        assert await read(h, KEY) == b"v1"
        assert local_leftovers(h.store) == []

    run(store_factory, tmp_path, body)


@stores
def test_put_whose_header_announces_another_digest_is_data_loss(store_factory: StoreFactory, tmp_path: Path) -> None:
    async def body(h: Harness, calls: MethodLog) -> None:
        announced = header()
        announced.sha256 = hashlib.sha256(b"other bytes").hexdigest()
        code, error = await refused(put(h, put_request(b"data", h=announced)))
        assert code == grpc.StatusCode.DATA_LOSS and isinstance(error, errors.DataLoss)
        assert await stat_code(h.stub, KEY) == grpc.StatusCode.NOT_FOUND
        assert local_leftovers(h.store) == []
        # The right announced digest is accepted.
        announced.sha256 = hashlib.sha256(b"data").hexdigest()
        assert (await put(h, put_request(b"data", h=announced))).info.sha256 == announced.sha256

    run(store_factory, tmp_path, body)


def test_put_with_a_step_token_is_scoped_to_its_workflow(tmp_path: Path) -> None:
    mine = ((STEP_TOKEN_METADATA, TOKENS.issue("wf", "wf-node", 1)),)

    async def body(h: Harness, calls: MethodLog) -> None:
        code, error = await refused(put(h, put_request(b"y", h=header("other", "other-pod")), mine))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert isinstance(error, errors.PermissionDenied)
        assert "'other'" in str(error)
        assert await listing(h) == []
        forged = ((STEP_TOKEN_METADATA, "forged.token"),)
        code, _ = await refused(put(h, put_request(b"y"), forged))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert await listing(h) == []
        # Its own workflow is fine, and so is a trusted caller (no token) for any workflow.
        assert (await put(h, put_request(b"mine"), mine)).info.key == KEY
        assert (await put(h, put_request(b"y", h=header("other", "other-pod")))).info.key.startswith("other/")

    run(LocalStore, tmp_path, body)


def test_put_small_turns_refusals_into_domain_errors(tmp_path: Path) -> None:
    async def body(h: Harness, calls: MethodLog) -> None:
        info = await put_small(h.stub, header(), b"hello", timeout=TIMEOUT)
        assert (info.size_bytes, info.sha256) == (5, hashlib.sha256(b"hello").hexdigest())
        with pytest.raises(errors.InvalidSpec) as too_big:
            await put_small(h.stub, header(), b"x" * (MiB + 1), timeout=TIMEOUT)
        assert [v.field for v in too_big.value.violations] == ["data"]
        mine = ((STEP_TOKEN_METADATA, TOKENS.issue("wf", "n", 0)),)
        with pytest.raises(errors.PermissionDenied):
            await put_small(h.stub, header("other"), b"x", timeout=TIMEOUT, metadata=mine)
        assert calls.methods == ["PutArtifact"] * 3

    run(LocalStore, tmp_path, body)


# ----------------------------------------------------------------------------- upload_file picks the call


@stores
@pytest.mark.parametrize(
    ("size", "method"),
    [(0, "PutArtifact"), (MiB, "PutArtifact"), (MiB + 1, "UploadArtifact"), (3 * MiB + 5, "UploadArtifact")],
    ids=["empty", "exactly-1MiB", "1MiB-and-a-byte", "3MiB"],
)
@pytest.mark.parametrize("announce_digest", [True, False], ids=["announced", "unannounced"])
def test_upload_file_puts_one_chunk_and_streams_more(
    store_factory: StoreFactory, tmp_path: Path, size: int, method: str, announce_digest: bool
) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(size)
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    async def body(h: Harness, calls: MethodLog) -> None:
        info = await upload_file(h.stub, header(), src, timeout=TIMEOUT, announce_digest=announce_digest)
        assert calls.methods == [method]
        assert (info.key, info.size_bytes, info.sha256) == (KEY, size, digest)
        dest = tmp_path / "copy.bin"
        assert await download_to_file(h.stub, info.key, dest, timeout=TIMEOUT) == info
        assert dest.read_bytes() == data
        assert local_leftovers(h.store) == []

    run(store_factory, tmp_path, body)


def test_upload_file_of_a_small_file_carries_the_step_token(tmp_path: Path) -> None:
    src = tmp_path / "log.txt"
    src.write_bytes(b"a line\n")
    mine = ((STEP_TOKEN_METADATA, TOKENS.issue("wf", "wf-node", 0)),)

    async def body(h: Harness, calls: MethodLog) -> None:
        assert (await upload_file(h.stub, header(), src, timeout=TIMEOUT, metadata=mine)).size_bytes == 7
        with pytest.raises(errors.PermissionDenied):
            await upload_file(h.stub, header("other"), src, timeout=TIMEOUT, metadata=mine)
        with pytest.raises(FileNotFoundError):
            await upload_file(h.stub, header(), tmp_path / "missing", timeout=TIMEOUT, metadata=mine)
        assert calls.methods == ["PutArtifact", "PutArtifact"]  # a missing file fails before any call

    run(LocalStore, tmp_path, body)


# ----------------------------------------------------------------------------- the local store directly


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def object_file(store: LocalStore, key: str) -> bytes:
    return store._path(key).read_bytes()


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(lambda d: [d], id="one-chunk"),
        pytest.param(lambda d: [d[:MiB], d[MiB:]], id="two-chunks"),
        pytest.param(lambda d: [d[:1000], d[1000:MiB], d[MiB:]], id="three-chunks"),
        pytest.param(lambda d: [b"", d], id="empty-then-all"),
    ],
)
def test_local_store_one_and_many_chunk_puts_read_back_identically(
    tmp_path: Path, parts: Callable[[bytes], list[bytes]]
) -> None:
    data = os.urandom(MiB + 4321)

    async def main() -> None:
        store = LocalStore(tmp_path / "repo")
        whole = await store.put("whole", chunks(data), owner="wf")
        split = await store.put("split", chunks(*parts(data)), owner="wf")
        assert (whole.size, whole.sha256, whole.owner) == (len(data), hashlib.sha256(data).hexdigest(), "wf")
        assert (split.size, split.sha256, split.owner) == (whole.size, whole.sha256, whole.owner)
        for key, info in (("whole", whole), ("split", split)):
            assert await store.stat(key) == info
            async with await store.get(key) as reader:
                assert b"".join([c async for c in reader]) == data
        # The same bytes on disk, header and owner included.
        assert object_file(store, "whole") == object_file(store, "split")
        assert os.listdir(store.root / "tmp") == []

    asyncio.run(main())


@pytest.mark.parametrize("data", [b"", b"small", b"m" * MiB], ids=["empty", "small", "one-MiB"])
def test_local_store_one_chunk_put_with_a_wrong_announced_digest_leaves_nothing(tmp_path: Path, data: bytes) -> None:
    wrong = hashlib.sha256(b"not these bytes").hexdigest()

    async def main() -> None:
        store = LocalStore(tmp_path / "repo")
        with pytest.raises(errors.DataLoss, match="nothing was stored"):
            await store.put("k/obj", chunks(data) if data else chunks(), sha256=wrong, owner="wf")
        assert os.listdir(store.root / "tmp") == []
        assert list((store.root / "objects").rglob("*")) == []
        with pytest.raises(errors.NotFound):
            await store.stat("k/obj")
        # A right announced digest (upper-case hex too) is accepted.
        info = await store.put("k/obj", chunks(data), sha256=hashlib.sha256(data).hexdigest().upper())
        assert info.size == len(data)

    asyncio.run(main())


@pytest.mark.parametrize("fail_after", [0, 1, 2, 3])
def test_local_store_leaves_nothing_when_the_stream_fails_at_any_chunk(tmp_path: Path, fail_after: int) -> None:
    """The chunks held back for the one-trip write, and those after them, are all cleaned up on failure."""

    async def failing() -> AsyncIterator[bytes]:
        for _ in range(fail_after):
            yield b"x" * 1000
        raise errors.DataLoss("boom")

    async def main() -> None:
        store = LocalStore(tmp_path / "repo")
        with pytest.raises(errors.DataLoss, match="boom"):
            await store.put("k", failing())
        assert os.listdir(store.root / "tmp") == []
        with pytest.raises(errors.NotFound):
            await store.stat("k")

    asyncio.run(main())


def test_a_streamed_upload_through_the_service_matches_a_put(tmp_path: Path) -> None:
    """UploadArtifact in several chunks and PutArtifact of the same bytes store the same object."""
    data = os.urandom(5000)

    async def body(h: Harness, calls: MethodLog) -> None:
        streamed = await raw_upload(h.stub, upload_messages(header(name="s"), [data[:10], data[10:]]))
        put_info = (await put(h, put_request(data, h=header(name="p")))).info
        assert (streamed.info.size_bytes, streamed.info.sha256) == (put_info.size_bytes, put_info.sha256)
        assert isinstance(h.store, LocalStore)
        assert object_file(h.store, streamed.info.key) == object_file(h.store, put_info.key)

    run(STORES["local"], tmp_path, body)


def test_put_refusal_details_name_the_field_and_the_size(tmp_path: Path) -> None:
    """PutArtifact's refusals carry details as UploadArtifact's do."""

    async def body(h: Harness, calls: MethodLog) -> None:
        details = await expect_code(grpc.StatusCode.INVALID_ARGUMENT, put(h, put_request(b"x" * (MiB + 1))))
        assert details.startswith("data: holds 1048577 bytes")

    run(LocalStore, tmp_path, body)
