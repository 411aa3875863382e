"""An ArtifactStore on the local filesystem, for embedded servers and development.

Layout under the root directory::

    objects/<seg>/<seg>/<leaf>%obj   one file per object
    tmp/<random>                     uploads in progress

Each object file starts with a header (magic, size, raw SHA-256, and the name
of the workflow that wrote it) followed by the data. The digest lives inside
the file rather than in a sidecar so that one rename publishes data and digest
together: an overwrite is atomic and a crash can never pair new bytes with an
old digest. ``stat`` reads only the header. Files of the first format (48-byte
header, no owner) are still read. Key segments are percent-encoded, and object files carry a ``%obj``
mark that no encoded segment can end with, so keys ``a/b`` and ``a/b/c`` can
coexist as they do in S3.

One server process owns a root; blocking file calls run in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
import time
from collections.abc import AsyncIterator, Iterator
from io import FileIO
from pathlib import Path
from urllib.parse import quote, unquote

from treadle.errors import DataLoss, InvalidSpec, NotFound

from .._threads import blocking
from ..keys import validate_key
from .base import (
    CHUNK_BYTES,
    DEFAULT_PAGE_SIZE,
    ObjectInfo,
    ObjectPage,
    ObjectReader,
    check_announced_digest,
    decode_page_token,
    encode_page_token,
)

_HEADER_V1 = struct.Struct(">8sQ32s")  # magic, data size, raw sha256
_MAGIC_V1 = b"TRDLOBJ1"
_HEADER = struct.Struct(">8sQ32sH")  # magic, data size, raw sha256, owner length; the owner follows
_MAGIC = b"TRDLOBJ2"
_MAX_OWNER_BYTES = 1024
_OBJECT_MARK = "%obj"  # quote() only ever emits '%' before two hex digits
_NAME_MAX = 255
_STALE_TMP_SECONDS = 24 * 3600


class LocalStore:
    """Objects as files under root; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        _remove_stale(self._tmp)

    @property
    def uri(self) -> str:
        return self.root.as_uri()

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, sha256: str = "", owner: str = "") -> ObjectInfo:
        path = self._path(key)
        owner_bytes = owner.encode()
        if len(owner_bytes) > _MAX_OWNER_BYTES:
            raise InvalidSpec(f"is longer than {_MAX_OWNER_BYTES} bytes", field="workflow")
        tmp = self._tmp / secrets.token_hex(12)
        # The first chunk is held back: an object that is only one chunk (a log, a parameter) is then
        # written, synced and published in one trip to a worker thread instead of four.
        iterator = aiter(chunks)
        first = await anext(iterator, b"")
        second = await anext(iterator, None)
        if second is None:
            return await blocking(self._put_whole, key, path, tmp, first, sha256, owner)
        f = await blocking(FileIO, tmp, "xb")
        writer = _HashingWriter(f)
        try:
            await blocking(writer.write, bytes(_HEADER.size) + owner_bytes, hashed=False)
            await blocking(writer.write, first)
            await blocking(writer.write, second)
            async for chunk in iterator:
                await blocking(writer.write, chunk)
            check_announced_digest(key, sha256, writer.digest.hexdigest(), writer.size)
            header = _HEADER.pack(_MAGIC, writer.size, writer.digest.digest(), len(owner_bytes))
            await blocking(_publish, f, tmp, path, header)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(key=key, size=writer.size, sha256=writer.digest.hexdigest(), owner=owner)

    def _put_whole(self, key: str, path: Path, tmp: Path, data: bytes, sha256: str, owner: str) -> ObjectInfo:
        owner_bytes = owner.encode()
        f = FileIO(tmp, "xb")
        writer = _HashingWriter(f)
        try:
            writer.write(bytes(_HEADER.size) + owner_bytes, hashed=False)
            writer.write(data)
            check_announced_digest(key, sha256, writer.digest.hexdigest(), writer.size)
            _publish(f, tmp, path, _HEADER.pack(_MAGIC, writer.size, writer.digest.digest(), len(owner_bytes)))
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(key=key, size=writer.size, sha256=writer.digest.hexdigest(), owner=owner)

    async def get(self, key: str) -> ObjectReader:
        path = self._path(key)
        f, info = await blocking(_open_object, path, key)

        async def close() -> None:
            f.close()

        return ObjectReader(info, _read_chunks(f, info), on_close=close)

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        f, info = await blocking(_open_object, path, key)
        f.close()
        return info

    async def list(self, prefix: str = "", page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> ObjectPage:
        after = decode_page_token(page_token)
        return await blocking(self._list_sync, prefix, page_size, after)

    async def delete(self, key: str) -> None:
        await blocking(self._delete_sync, self._path(key))

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        segments = validate_key(key).split("/")
        names = [quote(s, safe="") for s in segments[:-1]] + [quote(segments[-1], safe="") + _OBJECT_MARK]
        for name in names:
            if len(name.encode()) > _NAME_MAX:
                raise InvalidSpec(f"artifact key {key!r} has a segment too long for the local store", field="key")
        return self._objects.joinpath(*names)

    def _list_sync(self, prefix: str, page_size: int, after: str) -> ObjectPage:
        found: list[ObjectInfo] = []
        more = False
        for key, path in _walk(self._objects, "", prefix, after):
            if len(found) == page_size:
                more = True
                break
            try:
                f, info = _open_object(path, key)
            except NotFound:
                continue  # deleted while we walked
            f.close()
            found.append(info)
        return ObjectPage(found, encode_page_token(found[-1].key) if more and found else "")

    def _delete_sync(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self._objects:
            try:
                parent.rmdir()
            except OSError:
                break  # not empty (or already gone): keep the rest
            parent = parent.parent


class _HashingWriter:
    """Writes chunks to an unbuffered file, counting and hashing the data."""

    def __init__(self, f: FileIO) -> None:
        self.f = f
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes, *, hashed: bool = True) -> None:
        view = memoryview(chunk)
        while view:  # a raw write may be short
            written = self.f.write(view)
            view = view[written or 0 :]
        if hashed:
            self.digest.update(chunk)
            self.size += len(chunk)


def _publish(f: FileIO, tmp: Path, path: Path, header: bytes) -> None:
    try:
        os.pwrite(f.fileno(), header, 0)
        os.fsync(f.fileno())
    finally:
        f.close()
    # A concurrent delete may prune the parent directory between makedirs and rename.
    for attempt in range(3):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, path)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _open_object(path: Path, key: str) -> tuple[FileIO, ObjectInfo]:
    try:
        f = FileIO(path, "rb")
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("artifact", key) from None
    try:
        info, data_offset = _read_header(f, key)
        f.seek(data_offset)
        if os.fstat(f.fileno()).st_size != data_offset + info.size:
            raise DataLoss(f"artifact {key!r}: stored object size does not match its header")
    except BaseException:
        f.close()
        raise
    return f, info


def _read_header(f: FileIO, key: str) -> tuple[ObjectInfo, int]:
    """The object's info and where its data starts."""
    header = os.pread(f.fileno(), _HEADER.size + _MAX_OWNER_BYTES, 0)
    if header[:8] == _MAGIC_V1 and len(header) >= _HEADER_V1.size:
        _, size, raw = _HEADER_V1.unpack_from(header)
        return ObjectInfo(key=key, size=size, sha256=raw.hex()), _HEADER_V1.size
    if len(header) < _HEADER.size:
        raise DataLoss(f"artifact {key!r}: stored object is truncated")
    magic, size, raw, owner_length = _HEADER.unpack_from(header)
    if magic != _MAGIC or owner_length > _MAX_OWNER_BYTES:
        raise DataLoss(f"artifact {key!r}: stored object has no valid header")
    owner = header[_HEADER.size : _HEADER.size + owner_length]
    if len(owner) != owner_length:
        raise DataLoss(f"artifact {key!r}: stored object is truncated")
    return ObjectInfo(key=key, size=size, sha256=raw.hex(), owner=owner.decode()), _HEADER.size + owner_length


async def _read_chunks(f: FileIO, info: ObjectInfo) -> AsyncIterator[bytes]:
    remaining = info.size
    while remaining > 0:
        chunk = await blocking(f.read, min(CHUNK_BYTES, remaining))
        if not chunk:  # None cannot happen: the file is blocking
            raise DataLoss(f"artifact {info.key!r}: stored object ended early")
        remaining -= len(chunk)
        yield chunk


def _walk(directory: Path, key_prefix: str, prefix: str, after: str) -> Iterator[tuple[str, Path]]:
    """(key, path) of every object under directory, in key order, with key > after and matching prefix."""
    entries: list[tuple[str, Path, bool]] = []
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    entries.append((key_prefix + unquote(e.name) + "/", Path(e.path), True))
                elif e.name.endswith(_OBJECT_MARK) and e.is_file(follow_symlinks=False):
                    entries.append((key_prefix + unquote(e.name[: -len(_OBJECT_MARK)]), Path(e.path), False))
    except FileNotFoundError:
        return  # pruned by a concurrent delete
    # Sorting a directory as "name/" against files "name" gives the keys' global order.
    for full, path, is_dir in sorted(entries):
        if is_dir:
            if not (full.startswith(prefix) or prefix.startswith(full)):
                continue
            if full <= after and not after.startswith(full):
                continue  # the whole subtree sorts before the page token
            yield from _walk(path, full, prefix, after)
        elif full.startswith(prefix) and full > after:
            yield full, path


def _remove_stale(tmp: Path) -> None:
    """Drop uploads a crashed process left behind."""
    cutoff = time.time() - _STALE_TMP_SECONDS
    for entry in tmp.iterdir():
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
