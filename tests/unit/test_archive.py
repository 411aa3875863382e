"""treadle.archive: Argo-compatible packing, and unpacking that refuses hostile archives."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from treadle.archive import (
    UnpackLimits,
    UnsafeArchive,
    is_tarball,
    pack,
    pack_artifact,
    resolve_inside,
    unpack,
    unpack_artifact,
    unpack_zip,
)
from treadle.errors import FailedPrecondition, InvalidSpec


def snapshot(root: Path) -> set[str]:
    """Every path below root, relative, including dangling symlinks."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def craft_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def dir_member(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


# ----------------------------------------------------------------------------- round trips


def test_single_file_packs_under_its_base_name_and_unpacks_to_the_exact_destination(tmp_path: Path) -> None:
    src = tmp_path / "work" / "out.txt"
    src.parent.mkdir()
    src.write_bytes(b"hello\n")
    src.chmod(0o640)
    tgz = pack(src, tmp_path / "out.tgz")

    with tarfile.open(tgz) as tar:
        assert tar.getnames() == ["out.txt"]
    dest = tmp_path / "inputs" / "renamed.txt"
    unpack(tgz, dest)

    assert dest.read_bytes() == b"hello\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert snapshot(dest.parent) == {"renamed.txt"}  # no temporary directory left behind


def test_directory_round_trip_keeps_modes_symlinks_and_hard_links(tmp_path: Path) -> None:
    src = tmp_path / "src" / "tree"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o755)
    (src / "sub" / "secret").write_text("s")
    (src / "sub" / "secret").chmod(0o600)
    (src / "sub" / "deeper" / "data").write_bytes(os.urandom(300_000))
    (src / "sub" / "deeper").chmod(0o750)
    (src / "link-to-file").symlink_to("sub/secret")
    (src / "sub" / "link-up").symlink_to("../run.sh")
    (src / "dir-link").symlink_to("sub/deeper")
    (src / "dangling").symlink_to("not-there-yet")
    os.link(src / "run.sh", src / "hard")

    tgz = pack(src, tmp_path / "tree.tgz", compression_level=9)
    dest = tmp_path / "dest" / "tree-in"
    unpack(tgz, dest)

    assert snapshot(dest) == snapshot(src)
    for rel in ("run.sh", "sub/secret", "sub/deeper/data", "hard"):
        assert (dest / rel).read_bytes() == (src / rel).read_bytes()
    for rel in ("run.sh", "sub/secret", "sub/deeper", "sub"):
        assert stat.S_IMODE((dest / rel).stat().st_mode) == stat.S_IMODE((src / rel).stat().st_mode), rel
    for rel in ("link-to-file", "sub/link-up", "dir-link", "dangling"):
        assert (dest / rel).is_symlink() and os.readlink(dest / rel) == os.readlink(src / rel)
    assert (dest / "hard").stat().st_ino == (dest / "run.sh").stat().st_ino
    assert (dest / "dir-link" / "data").read_bytes() == (src / "sub" / "deeper" / "data").read_bytes()


def test_archive_with_several_top_level_entries_becomes_the_destination_directory(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "multi.tgz", [file_member("a.txt", b"A"), file_member("./b/c.txt", b"C")])
    dest = tmp_path / "out"
    unpack(tgz, dest)
    assert (dest / "a.txt").read_bytes() == b"A"
    assert (dest / "b" / "c.txt").read_bytes() == b"C"


def test_uncompressed_level_zero_still_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"\0" * 10_000)
    dest = tmp_path / "g.bin"
    unpack(pack(src, tmp_path / "f.tgz", compression_level=0), dest)
    assert dest.read_bytes() == src.read_bytes()


def test_archive_none_uploads_the_file_itself_and_places_it_as_is(tmp_path: Path) -> None:
    src = tmp_path / "report.json"
    src.write_text("{}")
    packed = pack_artifact(src, tmp_path, archive="none")
    assert (packed.path, packed.archive, packed.suffix) == (src, "none", "")

    downloaded = tmp_path / "download.tmp"
    downloaded.write_text("{}")
    unpack_artifact(downloaded, tmp_path / "in" / "report.json", archive="none")
    assert (tmp_path / "in" / "report.json").read_text() == "{}"
    assert not downloaded.exists()


def test_archive_none_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="only a file"):
        pack_artifact(tmp_path, tmp_path, archive="none")


def test_pack_artifact_tgz_and_sniffing_unpack(tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "x").write_text("x")
    work = tmp_path / "work"
    work.mkdir()
    packed = pack_artifact(src, work)
    assert packed.archive == "tgz" and packed.suffix == ".tgz" and packed.path.parent == work
    assert is_tarball(packed.path) and not is_tarball(src / "x")
    unpack_artifact(packed.path, tmp_path / "e")  # no archive kind: sniffed
    assert (tmp_path / "e" / "x").read_text() == "x"


def test_missing_source_and_existing_destination_are_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pack(tmp_path / "nope", tmp_path / "nope.tgz")
    tgz = craft_tar(tmp_path / "a.tgz", [file_member("a")])
    (tmp_path / "taken").write_text("keep me")
    with pytest.raises(FailedPrecondition, match="exists already"):
        unpack(tgz, tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "keep me"


def test_pack_refuses_to_write_into_the_directory_it_packs(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="inside it"):
        pack(tmp_path, tmp_path / "self.tgz")


# ----------------------------------------------------------------------------- hostile archives


def refuse(tmp_path: Path, tgz: Path, member: str) -> None:
    """Unpacking tgz must fail naming member and write nothing at all."""
    (tmp_path / "outside").mkdir(exist_ok=True)
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchive) as caught:
        unpack(tgz, tmp_path / "sandbox" / "dest")
    assert caught.value.member == member
    assert repr(member) in str(caught.value)
    # The destination's parent may be created; nothing else may appear.
    assert snapshot(tmp_path) - {"sandbox"} == before - {"sandbox"}
    assert snapshot(tmp_path / "sandbox") == set()


def test_parent_traversal_member_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "evil.tgz", [file_member("ok.txt"), file_member("../evil")])
    refuse(tmp_path, tgz, "../evil")
    assert not (tmp_path / "sandbox" / "evil").exists()


def test_nested_parent_traversal_member_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "evil.tgz", [file_member("a/b/../../../outside/evil")])
    refuse(tmp_path, tgz, "a/b/../../../outside/evil")


def test_absolute_member_is_refused(tmp_path: Path) -> None:
    name = str(tmp_path / "outside" / "abs-evil")
    tgz = craft_tar(tmp_path / "abs.tgz", [file_member(name)])
    refuse(tmp_path, tgz, name)
    assert not Path(name).exists()


def test_symlink_escaping_by_relative_path_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "sym.tgz", [dir_member("top"), link_member("top/link", "../../outside")])
    refuse(tmp_path, tgz, "top/link")


def test_symlink_to_an_absolute_path_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "sym.tgz", [link_member("etc", "/etc")])
    refuse(tmp_path, tgz, "etc")


def test_symlink_that_escapes_only_after_the_single_entry_rename_is_refused(tmp_path: Path) -> None:
    # top/link -> ../top/x stays inside the extraction directory, but the single entry
    # "top" becomes dest, after which ../top/x would point next to dest.
    tgz = craft_tar(tmp_path / "sym.tgz", [file_member("top/x"), link_member("top/link", "../top/x")])
    refuse(tmp_path, tgz, "top/link")


def test_symlink_chain_that_escapes_through_another_symlink_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "sym.tgz", [link_member("a", "."), link_member("e", "a/..")])
    refuse(tmp_path, tgz, "e")


def test_writing_through_a_symlink_is_refused_and_the_target_stays_untouched(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    tgz = craft_tar(
        tmp_path / "sym.tgz",
        [dir_member("top"), link_member("top/door", "../../outside"), file_member("top/door/evil")],
    )
    refuse(tmp_path, tgz, "top/door/evil")
    assert snapshot(tmp_path / "outside") == set()


def test_hard_link_escaping_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "outside" / "victim"
    victim.parent.mkdir()
    victim.write_text("original")
    for i, target in enumerate(("../../outside/victim", str(victim), "never-extracted")):
        tgz = craft_tar(
            tmp_path / f"hard{i}.tgz", [file_member("top/x"), link_member("top/h", target, tarfile.LNKTYPE)]
        )
        refuse(tmp_path, tgz, "top/h")
    assert victim.read_text() == "original" and victim.stat().st_nlink == 1


def test_hard_link_to_a_symlink_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(
        tmp_path / "hard.tgz",
        [link_member("top/s", "x"), file_member("top/x"), link_member("top/h", "top/s", tarfile.LNKTYPE)],
    )
    refuse(tmp_path, tgz, "top/h")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_files_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("top/dev")
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    tgz = craft_tar(tmp_path / "dev.tgz", [file_member("top/ok"), (info, None)])
    refuse(tmp_path, tgz, "top/dev")


def test_a_member_replacing_an_earlier_one_is_refused(tmp_path: Path) -> None:
    tgz = craft_tar(tmp_path / "dup.tgz", [file_member("top/a"), link_member("top/a", "/etc/passwd")])
    refuse(tmp_path, tgz, "top/a")


# ----------------------------------------------------------------------------- zip


def test_zip_round_trip_with_modes(tmp_path: Path) -> None:
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("pkg/run.sh")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(info, "#!/bin/sh\n")
        zf.writestr("pkg/data/readme.txt", "hi")
    unpack_zip(archive, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "readme.txt").read_text() == "hi"
    assert stat.S_IMODE((tmp_path / "out" / "run.sh").stat().st_mode) == 0o755


@pytest.mark.parametrize("name", ["../evil", "/abs/evil", "a\\..\\..\\evil", "C:/evil"])
def test_zip_traversal_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "ok")
        zf.writestr(zipfile.ZipInfo(name), "evil")
    (tmp_path / "outside").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchive) as caught:
        unpack_zip(archive, tmp_path / "dest")
    assert caught.value.member == zipfile.ZipInfo(name).filename
    assert snapshot(tmp_path) == before


def test_zip_symlink_escaping_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "sym.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("top/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../outside")
    with pytest.raises(UnsafeArchive, match="top/link"):
        unpack_zip(archive, tmp_path / "dest")
    assert snapshot(tmp_path) == {"sym.zip"}


def test_a_damaged_archive_is_invalid_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.write_bytes(os.urandom(200_000))
    tgz = pack(src, tmp_path / "big.tgz")
    tgz.write_bytes(tgz.read_bytes()[:50_000])  # cut short
    with pytest.raises(InvalidSpec, match="not a readable tar archive"):
        unpack(tgz, tmp_path / "out" / "big")
    assert snapshot(tmp_path / "out") == set()
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InvalidSpec, match="not a readable zip archive"):
        unpack_zip(tmp_path / "junk.zip", tmp_path / "out" / "z")


# ----------------------------------------------------------------------------- archive bombs and detection


def test_tar_bomb_by_bytes_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tgz"
    with tarfile.open(bomb, "w:gz", compresslevel=9) as tar:
        zeros = tarfile.TarInfo("top/zeros")
        zeros.size = 64 * 1024 * 1024
        tar.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    assert bomb.stat().st_size < 200_000  # ratio above 300:1
    limits = UnpackLimits(max_ratio=100, min_bytes=1024 * 1024)
    with pytest.raises(UnsafeArchive, match=r"top/zeros.*archive bomb"):
        unpack(bomb, tmp_path / "out", limits=limits)
    assert snapshot(tmp_path) == {"bomb.tgz"}
    unpack(bomb, tmp_path / "out")  # the default limits allow it: gzip cannot go past ~1,032:1
    assert (tmp_path / "out" / "zeros").stat().st_size == 64 * 1024 * 1024


def test_tar_bomb_by_member_count_is_refused(tmp_path: Path) -> None:
    many = craft_tar(tmp_path / "many.tgz", [file_member(f"d/f{i}") for i in range(50)])
    with pytest.raises(UnsafeArchive, match="limit of 20 members"):
        unpack(many, tmp_path / "out", limits=UnpackLimits(max_members=20))
    assert not (tmp_path / "out").exists()


def test_zip_bomb_is_stopped_by_the_bytes_it_writes(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(4):
            zf.writestr(f"z/{i}", bytes(8 * 1024 * 1024))
    limits = UnpackLimits(max_ratio=100, min_bytes=1024 * 1024)
    with pytest.raises(UnsafeArchive, match="archive bomb"):
        unpack_zip(path, tmp_path / "out", limits=limits)
    assert snapshot(tmp_path) == {"bomb.zip"}


def test_default_detection_unpacks_tarballs_only_as_argo_does(tmp_path: Path) -> None:
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "a")
    unpack_artifact(archive, tmp_path / "kept")  # a zip stays a zip unless asked for
    assert zipfile.is_zipfile(tmp_path / "kept")
    unpack_artifact(tmp_path / "kept", tmp_path / "unzipped", archive="zip")
    assert (tmp_path / "unzipped").read_text() == "a"
    plain_tar = tmp_path / "plain.tar"
    with tarfile.open(plain_tar, "w") as tar:
        tar.add(tmp_path / "unzipped", arcname="a.txt")
    unpack_artifact(plain_tar, tmp_path / "untarred")  # uncompressed tar too
    assert (tmp_path / "untarred").read_text() == "a"


def test_resolve_inside_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("f")
    (root / "out").symlink_to(tmp_path)
    assert resolve_inside(root, "d/f") == root / "d" / "f"
    assert resolve_inside(root, "./d/") == root / "d"
    for bad in ("../x", "/etc", "d/../../x", "out/anything"):
        with pytest.raises(InvalidSpec):
            resolve_inside(root, bad)
    with pytest.raises(FileNotFoundError):
        resolve_inside(root, "d/missing")
