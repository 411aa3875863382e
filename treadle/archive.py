"""Packing and unpacking artifacts the way Argo's executor does, with the stdlib only.

An output artifact is packed as tar+gzip with its base name as the top member
(``/tmp/out.txt`` becomes member ``out.txt``; ``/tmp/dir`` becomes ``dir/...``),
or stored as-is for ``archive: {none: {}}``. Unpacking follows Argo's ``untar``:
the archive is extracted into a temporary sibling of the destination; if it holds
exactly one top-level entry, that entry is renamed to the destination path,
otherwise the whole temporary directory is.

Unpacking treats the archive as hostile. It refuses, naming the member:
absolute names, ``..`` components, names that pass through a symlink, symlinks
whose target is absolute or resolves outside the destination, hard links to
anything but an earlier regular file, device files and FIFOs, and duplicate
names. On refusal the temporary directory is removed, so nothing is left
outside (or at) the destination.

It also refuses archive bombs (UnpackLimits): more members than a limit, or
more bytes unpacked than a multiple of the archive's own size (with a floor,
so small archives may still hold a lot of easily compressed data). Bytes are
counted as they are written, so a zip whose entries overlap or lie about their
sizes is stopped too.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from treadle.errors import FailedPrecondition, FieldViolation, InvalidSpec

StrPath = str | os.PathLike[str]
ArchiveKind = Literal["tgz", "none"]
SUFFIXES: dict[str, str] = {"tgz": ".tgz", "none": ""}
DEFAULT_COMPRESSION = 6  # gzip's own default, and Argo's (Go's DefaultCompression)
_COPY_BUFFER = 1024 * 1024
_MAX_LINK = 4096  # PATH_MAX
_MAX_HOPS = 40  # the kernel's MAXSYMLINKS


class UnsafeArchive(InvalidSpec):
    """An archive member that would escape the destination or is of a forbidden kind."""

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__([FieldViolation(member, reason)])

    def __str__(self) -> str:
        return f"unsafe archive member {self.member!r}: {self.violations[0].description}"


@dataclass(frozen=True)
class UnpackLimits:
    """How much an archive may unpack to: at most max_members members, and at most
    max(min_bytes, max_ratio * the archive's size) bytes of file data."""

    max_members: int = 1_000_000
    max_ratio: int = 2_000  # gzip and deflate top out near 1,032:1 on real data
    min_bytes: int = 1024**3

    def byte_budget(self, archive_size: int) -> int:
        return max(self.min_bytes, self.max_ratio * archive_size)


DEFAULT_LIMITS = UnpackLimits()


@dataclass(frozen=True)
class PackedArtifact:
    """A file ready to upload: where it is, how it is packed, and the key suffix that says so."""

    path: Path
    archive: ArchiveKind
    suffix: str


# ----------------------------------------------------------------------------- packing


def pack(src: StrPath, dest: StrPath, *, compression_level: int = DEFAULT_COMPRESSION) -> Path:
    """Write src (a file or a directory) to dest as tar+gzip; return dest.

    The top member is src's base name. Modes, mtimes and symlinks inside a
    directory are kept (symlinks are not followed); owners are not recorded. A
    symlink given as src itself is followed. Sockets, devices and FIFOs are
    left out. Raises FileNotFoundError when src does not exist.
    """
    src_path, dest_path = Path(src), Path(dest)
    if not 0 <= compression_level <= 9:
        raise InvalidSpec(f"must be 0 to 9, got {compression_level}", field="archive.tar.compressionLevel")
    real = src_path.resolve(strict=True)
    if real.is_dir() and dest_path.resolve().is_relative_to(real):
        raise InvalidSpec(f"cannot write the archive of {src_path} inside it", field="path")
    with tarfile.open(dest_path, "w:gz", compresslevel=compression_level, format=tarfile.PAX_FORMAT) as tar:
        tar.add(real, arcname=src_path.name, recursive=True, filter=_portable_member)
    return dest_path


def pack_artifact(
    src: StrPath, work_dir: StrPath, *, archive: ArchiveKind = "tgz", compression_level: int = DEFAULT_COMPRESSION
) -> PackedArtifact:
    """Prepare an output artifact for upload.

    ``tgz`` packs src into a new file in work_dir (the caller removes it after
    the upload). ``none`` uploads src itself, which must be a regular file.
    """
    src_path = Path(src)
    if archive == "none":
        if not src_path.resolve(strict=True).is_file():
            raise InvalidSpec(
                f"{src_path} is not a regular file; only a file can be stored without archiving", field="archive.none"
            )
        return PackedArtifact(src_path, "none", SUFFIXES["none"])
    fd, name = tempfile.mkstemp(prefix=f"{src_path.name}.", suffix=SUFFIXES["tgz"], dir=work_dir)
    os.close(fd)
    try:
        pack(src_path, name, compression_level=compression_level)
    except BaseException:
        os.unlink(name)
        raise
    return PackedArtifact(Path(name), "tgz", SUFFIXES["tgz"])


def _portable_member(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# ----------------------------------------------------------------------------- unpacking


def unpack_artifact(
    src: StrPath, dest: StrPath, *, archive: str | None = None, limits: UnpackLimits = DEFAULT_LIMITS
) -> None:
    """Place a downloaded artifact at dest: unpack a tarball or zip, or move a plain file.

    archive is how to treat the object: "tgz" (or "tar": any tar, compressed or
    not), "zip", or "none" (as-is). None detects a tarball and otherwise keeps
    the file as-is, as Argo does: a zip is unpacked only when asked for.
    """
    if archive is None:
        archive = "tgz" if is_tarball(src) else "none"
    if archive in ("tgz", "tar"):
        unpack(src, dest, limits=limits)
    elif archive == "zip":
        unpack_zip(src, dest, limits=limits)
    elif archive == "none":
        dest_path = _fresh_destination(dest)
        shutil.move(os.fspath(src), dest_path)
    else:
        raise InvalidSpec(f"unknown archive kind {archive!r}", field="archive")


def unpack(src: StrPath, dest: StrPath, *, limits: UnpackLimits = DEFAULT_LIMITS) -> None:
    """Extract a tar (gzip or not) to dest, which must not exist yet. See the module docstring."""
    try:
        with tarfile.open(src, "r:*") as tar:
            _extract(_tar_entries(tar), dest, _Budget(limits, os.path.getsize(src)))
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise InvalidSpec(f"{os.fspath(src)} is not a readable tar archive: {exc}", field="archive") from None


def unpack_zip(src: StrPath, dest: StrPath, *, limits: UnpackLimits = DEFAULT_LIMITS) -> None:
    """Extract a zip archive to dest with the same rules and layout as unpack."""
    try:
        with zipfile.ZipFile(src) as zf:
            _extract(_zip_entries(zf), dest, _Budget(limits, os.path.getsize(src)))
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise InvalidSpec(f"{os.fspath(src)} is not a readable zip archive: {exc}", field="archive") from None


def resolve_inside(root: StrPath, sub_path: str) -> Path:
    """root/sub_path, refusing a sub_path that leaves root ('..', absolute, or through a symlink).

    Raises InvalidSpec for such a path and FileNotFoundError when nothing is there.
    """
    root_path = Path(root)
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    if sub_path.startswith("/") or ".." in parts or "\x00" in sub_path:
        raise InvalidSpec(f"{sub_path!r} must be a relative path inside the artifact", field="subPath")
    path = root_path.joinpath(*parts)
    if not path.resolve().is_relative_to(root_path.resolve()):
        raise InvalidSpec(f"{sub_path!r} leaves the artifact through a symlink", field="subPath")
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{sub_path!r} is not in the artifact")
    return path


def is_tarball(path: StrPath) -> bool:
    try:
        with tarfile.open(path, "r:*"):
            return True
    except (tarfile.TarError, OSError, EOFError):
        return False


def is_zip(path: StrPath) -> bool:
    return zipfile.is_zipfile(path)


@dataclass(frozen=True)
class _Entry:
    name: str  # as written in the archive, for messages
    kind: Literal["file", "dir", "symlink", "hardlink", "special"]
    mode: int
    mtime: float | None
    link: str = ""  # a symlink's target, or a hard link's member name
    open: Callable[[], IO[bytes]] | None = None


def _tar_entries(tar: tarfile.TarFile) -> Iterator[_Entry]:
    for m in tar:
        if m.isreg():
            yield _Entry(m.name, "file", m.mode, m.mtime, open=_opener(tar, m))
        elif m.isdir():
            yield _Entry(m.name, "dir", m.mode, m.mtime)
        elif m.issym():
            yield _Entry(m.name, "symlink", m.mode, m.mtime, link=m.linkname)
        elif m.islnk():
            yield _Entry(m.name, "hardlink", m.mode, m.mtime, link=m.linkname)
        else:
            yield _Entry(m.name, "special", m.mode, m.mtime)


def _opener(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        f = tar.extractfile(member)
        assert f is not None  # a regular member always has a file object
        return f

    return open_member


def _zip_entries(zf: zipfile.ZipFile) -> Iterator[_Entry]:
    for info in zf.infolist():
        if "\\" in info.filename or (len(info.filename) > 1 and info.filename[1] == ":"):
            raise UnsafeArchive(info.filename, "has a Windows path (backslash or drive letter)")
        unix_mode = info.external_attr >> 16
        mtime = time.mktime((*info.date_time, 0, 0, -1))
        if stat.S_ISLNK(unix_mode):
            with zf.open(info) as f:
                target = f.read(_MAX_LINK + 1).decode("utf-8", "surrogateescape")
            if len(target) > _MAX_LINK:
                raise UnsafeArchive(info.filename, "is a symlink with an overlong target")
            yield _Entry(info.filename, "symlink", 0o777, None, link=target)
        elif info.is_dir():
            yield _Entry(info.filename, "dir", stat.S_IMODE(unix_mode) or 0o755, mtime)
        elif stat.S_IFMT(unix_mode) not in (0, stat.S_IFREG):
            yield _Entry(info.filename, "special", unix_mode, mtime)
        else:
            yield _Entry(info.filename, "file", stat.S_IMODE(unix_mode) or 0o644, mtime, open=_zip_opener(zf, info))


def _zip_opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: zf.open(info)


class _Budget:
    """What is left of an archive's UnpackLimits while it is extracted."""

    def __init__(self, limits: UnpackLimits, archive_size: int) -> None:
        self.members_left = limits.max_members
        self.bytes_left = limits.byte_budget(archive_size)
        self.limits = limits

    def member(self, name: str) -> None:
        self.members_left -= 1
        if self.members_left < 0:
            raise UnsafeArchive(name, f"is past the limit of {self.limits.max_members} members (an archive bomb?)")

    def copy(self, name: str, data: IO[bytes], out: IO[bytes]) -> None:
        while chunk := data.read(_COPY_BUFFER):
            self.bytes_left -= len(chunk)
            if self.bytes_left < 0:
                raise UnsafeArchive(name, "unpacks to more bytes than the archive's size allows (an archive bomb?)")
            out.write(chunk)


def _extract(entries: Iterator[_Entry], dest: StrPath, budget: _Budget) -> None:
    dest_path = _fresh_destination(dest)
    work = Path(tempfile.mkdtemp(prefix=f".{dest_path.name}.unpack-", dir=dest_path.parent))
    try:
        extractor = _Extractor(work, budget)
        for entry in entries:
            extractor.add(entry)
        final_root = extractor.finish()
        os.rename(final_root, dest_path)
    finally:
        if work.exists():
            _rmtree(work)


def _fresh_destination(dest: StrPath) -> Path:
    dest_path = Path(os.path.abspath(dest))
    if os.path.lexists(dest_path):
        raise FailedPrecondition(f"artifact destination {dest_path} exists already", subject=str(dest_path))
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    return dest_path


class _Extractor:
    """Writes checked entries below a fresh, private work directory."""

    def __init__(self, work: Path, budget: _Budget) -> None:
        self.work = work
        self.budget = budget
        self.kinds: dict[tuple[str, ...], str] = {}
        self.symlinks: list[tuple[str, Path]] = []
        self.dirs: list[tuple[Path, int, float | None]] = []

    def add(self, entry: _Entry) -> None:
        self.budget.member(entry.name)
        parts = _member_parts(entry.name)
        if not parts:
            if entry.kind == "dir":
                return  # "./": the archive's own root
            raise UnsafeArchive(entry.name, "has an empty name")
        for depth in range(1, len(parts)):
            kind = self.kinds.setdefault(parts[:depth], "dir")  # parents may be implicit
            if kind != "dir":
                raise UnsafeArchive(entry.name, f"passes through {'/'.join(parts[:depth])!r}, which is a {kind}")
        previous = self.kinds.get(parts)
        if previous is not None and not (previous == "dir" and entry.kind == "dir"):
            raise UnsafeArchive(entry.name, "names the same path as an earlier member")
        target = self.work.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._write(entry, target)
        self.kinds[parts] = entry.kind

    def _write(self, entry: _Entry, target: Path) -> None:
        if entry.kind == "dir":
            target.mkdir(mode=0o700, exist_ok=True)
            self.dirs.append((target, entry.mode & 0o1777, entry.mtime))
        elif entry.kind == "file":
            assert entry.open is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out, entry.open() as data:
                self.budget.copy(entry.name, data, out)
                os.fchmod(out.fileno(), entry.mode & 0o777)
            if entry.mtime is not None:
                os.utime(target, (entry.mtime, entry.mtime), follow_symlinks=False)
        elif entry.kind == "symlink":
            if not entry.link or "\x00" in entry.link or entry.link.startswith("/"):
                raise UnsafeArchive(entry.name, f"is a symlink to {entry.link!r}, outside the destination")
            os.symlink(entry.link, target)
            self.symlinks.append((entry.name, target))
        elif entry.kind == "hardlink":
            try:
                source = _member_parts(entry.link)
            except UnsafeArchive as exc:
                raise UnsafeArchive(entry.name, f"is a hard link to {entry.link!r}, which {exc.reason}") from None
            if self.kinds.get(source) != "file":
                raise UnsafeArchive(entry.name, f"is a hard link to {entry.link!r}, not an earlier file in the archive")
            os.link(self.work.joinpath(*source), target, follow_symlinks=False)
        else:
            raise UnsafeArchive(entry.name, "is a device file, FIFO or other special file")

    def finish(self) -> Path:
        """Check every symlink against the final root; set directory modes; return the root to rename."""
        tops = {parts[0] for parts in self.kinds}
        root = self.work / next(iter(tops)) if len(tops) == 1 else self.work
        if root != self.work and self.kinds[(root.name,)] == "symlink":
            raise UnsafeArchive(root.name, "is a symlink as the archive's only entry")
        for name, link in self.symlinks:
            if not _stays_beneath(root, link.relative_to(root)):
                raise UnsafeArchive(name, f"is a symlink to {os.readlink(link)!r}, outside the destination")
        for path, mode, mtime in sorted(self.dirs, key=lambda d: len(d[0].parts), reverse=True):
            # Deepest first: a parent made read-only must not block its children.
            if mtime is not None:
                os.utime(path, (mtime, mtime))
            os.chmod(path, mode)
        return root


def _stays_beneath(root: Path, link: Path) -> bool:
    """Whether the symlink at root/link resolves inside root, judged only from inside root.

    Resolving within the tree (like openat2's RESOLVE_BENEATH) rather than with
    realpath matters because root is renamed afterwards: a link "../top/x" inside
    "top" stays inside while the tree sits in the work directory, but not once
    "top" is the destination.
    """
    hops = 0

    def resolve(base: list[str], target: str) -> list[str] | None:
        nonlocal hops
        if target.startswith("/"):
            return None
        path = list(base)
        for component in target.split("/"):
            if component in ("", "."):
                continue
            if component == "..":
                if not path:
                    return None
                path.pop()
                continue
            path.append(component)
            if os.path.islink(root.joinpath(*path)):
                hops += 1
                if hops > _MAX_HOPS:
                    return None  # a loop; the kernel would refuse it too
                resolved = resolve(path[:-1], os.readlink(root.joinpath(*path)))
                if resolved is None:
                    return None
                path = resolved
        return path

    return resolve(list(link.parts[:-1]), os.readlink(root / link)) is not None


def _member_parts(name: str) -> tuple[str, ...]:
    """A member name as path components; refuses absolute names, '..' and NUL."""
    if "\x00" in name:
        raise UnsafeArchive(name, "contains a NUL character")
    if name.startswith("/"):
        raise UnsafeArchive(name, "is an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive(name, "contains a '..' component")
    return parts


def _rmtree(path: Path) -> None:
    """Remove a tree even if the archive made some of its directories read-only."""
    for dirpath, dirnames, _files in os.walk(path):  # top-down: a directory opens before it is entered
        for name in dirnames:
            child = os.path.join(dirpath, name)
            if not os.path.islink(child):  # chmod would follow a link out of the tree
                os.chmod(child, 0o700)
    shutil.rmtree(path)
