"""Archive extraction refuses everything that could write outside the snapshot."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hubcore.errors import ArchiveError
from hubcore.store.archives import archive_commit, extract_archive


def zip_bytes(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def tar_bytes(members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info in members:
            payload = (data or {}).get(info.name)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def extract(tmp_path: Path, data: bytes, name: str = "a.zip") -> Path:
    archive = tmp_path / name
    archive.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    return dest


def test_normal_zip_strips_single_top_folder(tmp_path) -> None:
    dest = extract(tmp_path, zip_bytes([("repo-abc/hubconf.py", b"x = 1\n", None)]))
    assert (dest / "hubconf.py").read_text() == "x = 1\n"


@pytest.mark.parametrize(
    ("name", "why"),
    [("../evil.py", r"'\.\.'"), ("top/../../evil.py", r"'\.\.'"), ("/etc/evil.py", "absolute")],
)
def test_zip_slip_is_refused(tmp_path, name, why) -> None:
    data = zip_bytes([("top/hubconf.py", b"ok", None), (name, b"evil", None)])
    with pytest.raises(ArchiveError, match=why):
        extract(tmp_path, data)
    assert not list((tmp_path / "out").iterdir())
    assert not (tmp_path / "evil.py").exists()


def test_zip_symlink_escape_is_refused(tmp_path) -> None:
    link_mode = stat.S_IFLNK | 0o777
    data = zip_bytes([("top/hubconf.py", b"ok", None), ("top/link", b"../../outside", link_mode)])
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract(tmp_path, data)
    assert not list((tmp_path / "out").iterdir())


def test_zip_symlink_inside_is_kept(tmp_path) -> None:
    link_mode = stat.S_IFLNK | 0o777
    data = zip_bytes([("top/a.py", b"A = 1", None), ("top/b.py", b"a.py", link_mode)])
    dest = extract(tmp_path, data)
    assert (dest / "b.py").is_symlink()
    assert (dest / "b.py").read_text() == "A = 1"


def test_tar_device_files_are_refused(tmp_path) -> None:
    dev = tarfile.TarInfo("top/null")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    with pytest.raises(ArchiveError, match="device"):
        extract(tmp_path, tar_bytes([dev]), "a.tar")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside", "a/../../../x"])
def test_tar_symlink_escapes(tmp_path, target) -> None:
    sym = tarfile.TarInfo("top/escape")
    sym.type, sym.linkname = tarfile.SYMTYPE, target
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract(tmp_path, tar_bytes([sym]), "a.tar")


def test_tar_hardlink_escape(tmp_path) -> None:
    hard = tarfile.TarInfo("top/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "../../etc/passwd"
    with pytest.raises(ArchiveError, match=r"'\.\.'"):
        extract(tmp_path, tar_bytes([hard]), "a.tar")


def test_tar_hardlink_inside_is_copied(tmp_path) -> None:
    data = b"A = 1\n"
    regular = tarfile.TarInfo("top/a.py")
    regular.size = len(data)
    hard = tarfile.TarInfo("top/b.py")
    hard.type, hard.linkname = tarfile.LNKTYPE, "top/a.py"
    dest = extract(tmp_path, tar_bytes([regular, hard], {"top/a.py": data}), "a.tar")
    assert (dest / "b.py").read_bytes() == data
    assert not (dest / "b.py").is_symlink()


def test_zip_bomb_limit(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_MAX_ARCHIVE_BYTES", "1000")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("top/big.bin", b"\0" * 100_000)
    with pytest.raises(ArchiveError, match="expands beyond 1000 bytes"):
        extract(tmp_path, buf.getvalue())
    assert not list((tmp_path / "out").iterdir())


def test_not_an_archive_and_truncated(tmp_path) -> None:
    with pytest.raises(ArchiveError, match="neither"):
        extract(tmp_path, b"plain text")
    good = zip_bytes([("top/hubconf.py", b"x" * 5000, None)])
    (tmp_path / "out").rmdir()
    with pytest.raises(ArchiveError):
        extract(tmp_path, good[: len(good) // 2] + b"\0" * 10)


def test_archive_commit_reads_git_comment(tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a", "b")
        zf.comment = b"0123456789abcdef0123456789abcdef01234567"
    (tmp_path / "c.zip").write_bytes(buf.getvalue())
    assert archive_commit(tmp_path / "c.zip") == "0123456789abcdef0123456789abcdef01234567"
    (tmp_path / "d.zip").write_bytes(zip_bytes([("a", b"b", None)]))
    assert archive_commit(tmp_path / "d.zip") is None


def test_malformed_size_limit_is_a_config_error(tmp_path, monkeypatch) -> None:
    from hubcore.errors import ConfigError

    monkeypatch.setenv("HUBCORE_MAX_ARCHIVE_BYTES", "4GB")
    with pytest.raises(ConfigError, match="HUBCORE_MAX_ARCHIVE_BYTES"):
        extract(tmp_path, zip_bytes([("top/a.py", b"x", None)]))


# -- hostile and damaged archives: each one an ArchiveError, nothing left behind --------------
LINK_MODE = stat.S_IFLNK | 0o777


def refused(tmp_path: Path, data: bytes, name: str, match: str) -> None:
    with pytest.raises(ArchiveError, match=match):
        extract(tmp_path, data, name)
    assert not list((tmp_path / "out").iterdir())


def test_zip_symlink_target_with_a_nul_byte(tmp_path) -> None:
    data = zip_bytes([("top/a.py", b"A = 1", None), ("top/l", b"a.py\0x", LINK_MODE)])
    refused(tmp_path, data, "a.zip", r"refusing 'top/l'.*NUL")


def test_member_name_with_a_nul_byte(tmp_path) -> None:
    info = tarfile.TarInfo("top/a.py")
    info.pax_headers = {"path": "top/a\0b.py"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(b""))
    refused(tmp_path, buf.getvalue(), "a.tar", "NUL")


def _patch_zip(data: bytes, name: bytes, patch: Callable[[bytearray, int], None]) -> bytes:
    """*data* with *patch* applied at the local header and the central record of *name*."""
    out = bytearray(data)
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):
        at = out.find(signature)
        while at >= 0:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if out[name_at : name_at + len(name)] == name:
                patch(out, at + (0 if signature == b"PK\x03\x04" else 2))
            at = out.find(signature, at + 1)
    return bytes(out)


def test_encrypted_zip_member(tmp_path) -> None:
    data = zip_bytes([("top/hubconf.py", b"x = 1\n", None), ("top/secret.py", b"s", None)])

    def encrypt(buf: bytearray, header: int) -> None:
        buf[header + 6] |= 0x1  # general-purpose flag bit 0: encrypted

    data = _patch_zip(data, b"top/secret.py", encrypt)
    refused(tmp_path, data, "a.zip", r"refusing 'top/secret\.py'.*(encrypted|unsupported)")


def test_encrypted_zip_symlink(tmp_path) -> None:
    data = zip_bytes([("top/a.py", b"A", None), ("top/l", b"a.py", LINK_MODE)])

    def encrypt(buf: bytearray, header: int) -> None:
        buf[header + 6] |= 0x1

    refused(tmp_path, _patch_zip(data, b"top/l", encrypt), "a.zip", r"refusing 'top/l'")


def test_zip_member_with_an_unsupported_compression_method(tmp_path) -> None:
    data = zip_bytes([("top/hubconf.py", b"x = 1\n", None), ("top/odd.py", b"odd", None)])

    def method_99(buf: bytearray, header: int) -> None:
        buf[header + 8 : header + 10] = (99).to_bytes(2, "little")

    data = _patch_zip(data, b"top/odd.py", method_99)
    refused(tmp_path, data, "a.zip", r"refusing 'top/odd\.py'.*unsupported")


def test_zip_with_a_name_that_is_not_utf8(tmp_path) -> None:
    data = zip_bytes([("top/a\xe9.py", b"x", None)])  # stored as UTF-8, flag 0x800 set
    data = data.replace("a\xe9".encode(), b"a\xff\xfe")
    with pytest.raises(ArchiveError, match="damaged or unsupported archive"):
        extract(tmp_path, data)


def _damaged_tar(compression: str, fill: bytes = b"\xff") -> bytes:
    """A compressed tar whose compressed stream is damaged after its first member."""
    import random

    noise = random.Random(0).randbytes(150_000).hex().encode()  # compressible, in blocks
    first = tarfile.TarInfo("top/hubconf.py")
    first.size = 6
    big = tarfile.TarInfo("top/weights.bin")
    big.size = len(noise)
    buf = io.BytesIO()
    level = {"compresslevel": 1} if compression != "xz" else {}  # bz2: 100 kB blocks
    with tarfile.open(fileobj=buf, mode=f"w:{compression}", **level) as tf:
        tf.addfile(first, io.BytesIO(b"x = 1\n"))
        tf.addfile(big, io.BytesIO(noise))
    data = bytearray(buf.getvalue())
    middle = len(data) // 2
    data[middle : middle + 64] = fill * 64
    return bytes(data)


@pytest.mark.parametrize(("compression", "suffix"), [("xz", "xz"), ("gz", "gz"), ("bz2", "bz2")])
def test_damaged_compressed_tar(tmp_path, compression, suffix) -> None:
    data = _damaged_tar(compression)
    refused(tmp_path, data, f"a.tar.{suffix}", "damaged or unsupported")


def test_damage_only_the_gzip_checksum_sees_is_refused(tmp_path) -> None:
    """Zeroed deflate bytes can decode to other bytes; gzip's CRC at the end catches it."""
    refused(tmp_path, _damaged_tar("gz", b"\0"), "a.tar.gz", "damaged or unsupported")


def test_damaged_deflate_stream_in_a_zip(tmp_path) -> None:
    import random

    noise = random.Random(1).randbytes(100_000).hex().encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("top/hubconf.py", b"x = 1\n")
        zf.writestr("top/weights.txt", noise)
    data = bytearray(buf.getvalue())
    start = data.find(b"top/weights.txt") + len("top/weights.txt") + 100
    data[start : start + 200] = b"\xff" * 200
    refused(tmp_path, bytes(data), "a.zip", r"refusing 'top/weights\.txt'.*damaged or unsupported")


def _file(name: str, body: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    return info, body


def _tar_with(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, body in members:
            tf.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize(
    "members",
    [
        # a file, then a symbolic link of the same name (tarfile's lookup by name: KeyError)
        [_file("top/x.py", b"x"), _link("top/x.py", "elsewhere.py", tarfile.SYMTYPE)],
        # a file, then a link of the same name to itself (RecursionError)
        [_file("top/x.py", b"x"), _link("top/x.py", "x.py", tarfile.SYMTYPE)],
        [_file("top/x.py", b"x"), _link("top/x.py", "top/x.py", tarfile.LNKTYPE)],
        # a hard link of the same name makes x.py's body come from another member
        [
            _file("top/x.py", b"mine"),
            _file("top/other.py", b"other"),
            _link("top/x.py", "top/other.py", tarfile.LNKTYPE),
        ],
        # two files, spelled differently
        [_file("top/x.py", b"1"), _file("top/./x.py", b"2")],
    ],
    ids=["file-then-symlink", "symlink-to-itself", "hardlink-to-itself", "hardlink-swap", "file"],
)
def test_duplicate_tar_member_names_are_refused(tmp_path, members) -> None:
    refused(tmp_path, _tar_with(members), "a.tar", r"refusing 'top/(\./)?x\.py'.*more than once")


def test_duplicate_zip_member_names_are_refused(tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("top/x.py", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("top/x.py", b"second")
    refused(tmp_path, buf.getvalue(), "a.zip", r"refusing 'top/x\.py'.*more than once")


def _git_commit(entries: list[tuple[bytes, int, bytes]], stored: bool = True) -> tuple[Any, str]:
    """A MemoryRepo and the commit of a one-level tree of *entries* (name, mode, content);
    with ``stored=False`` the blobs are named but missing, as in an incomplete pack."""
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import MemoryRepo

    repo = MemoryRepo()
    tree = Tree()
    for name, mode, data in entries:
        blob = Blob.from_string(data)
        if stored:
            repo.object_store.add_object(blob)
        tree.add(name, mode, blob.id)
    repo.object_store.add_object(tree)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"t <t@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"test"
    repo.object_store.add_object(commit)
    return repo, commit.id.decode()


def test_git_tree_symlink_target_with_a_nul_byte(tmp_path) -> None:
    from hubcore.sources.git import _write_tree

    repo, commit = _git_commit(
        [(b"hubconf.py", 0o100644, b"dependencies = []\n"), (b"l", 0o120000, b"hubconf.py\0x")]
    )
    with pytest.raises(ArchiveError, match=r"refusing 'l'.*NUL"):
        _write_tree(repo, commit, tmp_path, "nul")


def test_git_tree_with_a_missing_object(tmp_path) -> None:
    """A server whose pack lacks a blob of the commit: a DownloadError, not a KeyError."""
    from hubcore.errors import DownloadError
    from hubcore.sources.git import _write_tree

    repo, commit = _git_commit([(b"hubconf.py", 0o100644, b"x = 1\n")], stored=False)
    with pytest.raises(DownloadError, match="lacks the git object"):
        _write_tree(repo, commit, tmp_path, "lab/incomplete")
