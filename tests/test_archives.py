"""Archive extraction refuses everything that could write outside the snapshot."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from hubcore.archives import archive_commit, extract_archive
from hubcore.errors import ArchiveError


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
