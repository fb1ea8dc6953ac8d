"""Chains of symbolic links and hard links cannot write, copy or point outside the tree.

Every test extracts into ``tmp/l1/.../l6/dest`` and then checks that the folders around the tree
are exactly as before: a chain of depth *d* would land *d* folders above ``dest``, still inside
``tmp``, so a regression shows up here instead of in the user's home folder.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import ArchiveError
from hubcore.store.archives import TreeWriter, check_member_name, extract_archive
from hubcore.testing.pytest_plugin import isolated_home

from .gitserver import BareRepo, GitDaemon

NESTING = 6
LINK_MODE = stat.S_IFLNK | 0o777

# (kind, name, payload): kind "file" (payload: bytes), "sym" or "hard" (payload: link target)
Spec = list[tuple[str, str, str | bytes]]


def chain(depth: int, top: str = "") -> tuple[Spec, str]:
    """The links of the issue: ``c0 -> .``, ``u0 -> c0/..``, ``u0/c1 -> .``, ``u0/u1 -> c1/..``
    and so on; ``u0/.../u{depth-1}`` is *depth* folders above the tree. Returns the links and
    the path through them."""
    spec: Spec = []
    path = ""
    for i in range(depth):
        spec.append(("sym", f"{top}{path}c{i}", "."))
        spec.append(("sym", f"{top}{path}u{i}", f"c{i}/.."))
        path += f"u{i}/"
    return spec, path


def tar_of(spec: Spec) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for kind, name, payload in spec:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
                continue
            info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
            info.linkname = str(payload)
            tf.addfile(info)
    return buf.getvalue()


def zip_of(spec: Spec) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for kind, name, payload in spec:
            assert kind != "hard", "zip has no hard links"
            info = zipfile.ZipInfo(name)
            if kind == "sym":
                info.external_attr = LINK_MODE << 16
            zf.writestr(info, payload)
    return buf.getvalue()


def outside(tmp: Path, dest: Path) -> set[str]:
    """Every path under *tmp* except those inside *dest* (links are listed, not followed)."""
    found = set()
    for folder, dirs, files in os.walk(tmp):
        if Path(folder) == dest:
            dirs[:] = []
            continue
        found.update(os.path.join(folder, n) for n in dirs + files)
    return found


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path.joinpath(*(f"l{i}" for i in range(1, NESTING + 1)), "dest")
    folder.mkdir(parents=True)
    return folder


def extract_spec(tmp_path: Path, dest: Path, data: bytes, kind: str) -> None:
    archive = tmp_path / f"archive.{kind}"
    archive.write_bytes(data)
    extract_archive(archive, dest)


def render(spec: Spec, kind: str) -> bytes:
    return tar_of(spec) if kind == "tar" else zip_of(spec)


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("top", ["", "top/"])
@pytest.mark.parametrize("depth", [1, 2, 3, NESTING])
def test_symlink_chain_writes_nothing_outside(tmp_path, dest, kind, top, depth) -> None:
    links, path = chain(depth, top)
    spec = [
        *links,
        ("file", f"{top}{path}ESCAPED.txt", b"pwned"),
        ("file", f"{top}hubconf.py", b""),
    ]
    data = render(spec, kind)
    before = outside(tmp_path, dest) | {str(tmp_path / f"archive.{kind}")}
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_spec(tmp_path, dest, data, kind)
    assert outside(tmp_path, dest) == before
    assert not any(dest.iterdir())


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("target", ["c/..", "c/c/c/..", "c/../top/..", "d/..", "d/../x"])
def test_link_that_leaves_through_links_is_refused(tmp_path, dest, kind, target) -> None:
    """A link that resolves outside is refused even if nothing is written through it, and
    whatever the order of the links it goes through."""
    spec: Spec = [
        ("sym", "top/a", target),
        ("sym", "top/c", "."),
        ("sym", "top/d", "c/c"),
        ("file", "top/hubconf.py", b""),
    ]
    with pytest.raises(ArchiveError, match="leaves the archive"):
        extract_spec(tmp_path, dest, render(spec, kind), kind)
    assert not any(dest.iterdir())


@pytest.mark.parametrize(("target", "why"), [("\\etc\\passwd", "absolute"), ("", "nothing")])
def test_odd_link_targets_are_refused(tmp_path, dest, target, why) -> None:
    spec: Spec = [("sym", "top/a", target), ("file", "top/hubconf.py", b"")]
    with pytest.raises(ArchiveError, match=why):
        extract_spec(tmp_path, dest, tar_of(spec), "tar")


@pytest.mark.parametrize("depth", [1, 2, NESTING])
def test_hard_link_through_a_chain_copies_nothing(tmp_path, dest, depth) -> None:
    secret = dest.parents[depth - 1] / "trusted.json"
    secret.write_text('{"secret": true}')
    links, path = chain(depth, "top/")
    spec = [*links, ("hard", "top/stolen.json", f"top/{path}trusted.json")]
    data = tar_of([*spec, ("file", "top/hubconf.py", b"")])
    before = outside(tmp_path, dest) | {str(tmp_path / "archive.tar")}
    with pytest.raises(ArchiveError):
        extract_spec(tmp_path, dest, data, "tar")
    assert outside(tmp_path, dest) == before
    assert not any(dest.iterdir())


def test_hard_link_must_name_an_earlier_regular_file(tmp_path, dest) -> None:
    spec: Spec = [
        ("sym", "top/link", "real.txt"),
        ("file", "top/real.txt", b"x"),
        ("hard", "top/copy.txt", "top/link"),
    ]
    with pytest.raises(ArchiveError, match="regular file"):
        extract_spec(tmp_path, dest, tar_of(spec), "tar")
    later: Spec = [("hard", "top/copy.txt", "top/real.txt"), ("file", "top/real.txt", b"x")]
    with pytest.raises(ArchiveError, match="regular file"):
        extract_spec(tmp_path, dest, tar_of(later), "tar")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_member_inside_a_link_is_refused(tmp_path, dest, kind) -> None:
    """Even a link that stays inside is never written through."""
    spec: Spec = [
        ("file", "top/sub/keep.txt", b"k"),
        ("sym", "top/a", "sub"),
        ("file", "top/a/x.txt", b"x"),
    ]
    with pytest.raises(ArchiveError, match="inside the symbolic link"):
        extract_spec(tmp_path, dest, render(spec, kind), kind)
    assert not any(dest.iterdir())


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_link_over_a_folder_is_refused(tmp_path, dest, kind) -> None:
    spec: Spec = [("file", "top/a/x.txt", b"x"), ("sym", "top/a", ".")]
    with pytest.raises(ArchiveError, match="already"):
        extract_spec(tmp_path, dest, render(spec, kind), kind)
    assert not any(dest.iterdir())


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_link_loops_are_refused(tmp_path, dest, kind) -> None:
    spec: Spec = [("sym", "top/a", "b"), ("sym", "top/b", "a"), ("file", "top/hubconf.py", b"")]
    with pytest.raises(ArchiveError, match="loop"):
        extract_spec(tmp_path, dest, render(spec, kind), kind)


def test_doubling_links_hit_the_hop_limit(tmp_path, dest) -> None:
    """Each link names the one before twice: resolving the last would take 2**30 steps."""
    spec: Spec = [("sym", "top/l0", ".")]
    spec += [("sym", f"top/l{i}", f"l{i - 1}/l{i - 1}") for i in range(1, 31)]
    with pytest.raises(ArchiveError, match="loop"):
        extract_spec(tmp_path, dest, tar_of(spec), "tar")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_legitimate_links_still_work(tmp_path, dest, kind) -> None:
    spec: Spec = [
        ("sym", "repo-1/models/latest", "v2"),  # before its target: links are made last
        ("file", "repo-1/models/v2/w.bin", b"weights"),
        ("file", "repo-1/shared/util.py", b"U = 1\n"),
        ("sym", "repo-1/pkg/common", "../shared"),
        ("sym", "repo-1/here", "."),
        ("sym", "repo-1/via", "here/models/../shared/util.py"),
        ("sym", "repo-1/dangling", "not/there"),
        ("file", "repo-1/hubconf.py", b""),
    ]
    extract_spec(tmp_path, dest, render(spec, kind), kind)
    assert (dest / "models/latest/w.bin").read_bytes() == b"weights"
    assert (dest / "pkg/common/util.py").read_text() == "U = 1\n"
    assert (dest / "via").read_text() == "U = 1\n"
    assert (dest / "dangling").is_symlink()


def test_hard_link_to_a_regular_member_is_copied(tmp_path, dest) -> None:
    spec: Spec = [("file", "top/a/w.bin", b"w"), ("hard", "top/b/w.bin", "top/a/w.bin")]
    extract_spec(tmp_path, dest, tar_of(spec), "tar")
    assert (dest / "b/w.bin").read_bytes() == b"w"
    assert not (dest / "b/w.bin").is_symlink()


def test_hard_links_count_towards_the_size_limit(tmp_path, dest, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_MAX_ARCHIVE_BYTES", "1000")
    spec: Spec = [("file", "top/big.bin", b"\0" * 600), ("hard", "top/copy.bin", "top/big.bin")]
    with pytest.raises(ArchiveError, match="expands beyond 1000 bytes"):
        extract_spec(tmp_path, dest, tar_of(spec), "tar")


# -- end to end: an archive URL, and the git source ------------------------------------------------


@pytest.fixture
def deep_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A hub home deep enough that an escaping chain would still land inside *tmp_path*."""
    home = tmp_path.joinpath("h1", "h2", "h3", "home")
    home.mkdir(parents=True)
    yield from isolated_home(home, monkeypatch)


def all_paths(tmp: Path) -> list[str]:
    """Every path under *tmp*; links are listed, not followed."""
    found = []
    for folder, dirs, files in os.walk(tmp):
        found += [os.path.join(folder, n) for n in dirs + files]
    return found


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_list_of_an_escaping_archive_url(tmp_path, deep_home, file_server, kind) -> None:
    """The chain of the issue, four deep: it would reach ``h2``, two folders above the home."""
    links, path = chain(4)
    spec = [*links, ("file", f"{path}ESCAPED.txt", b"pwned"), ("file", "hubconf.py", b"")]
    url = file_server.add(f"evil.{kind}", render(spec, kind))
    with pytest.raises(ArchiveError, match="symbolic link"):
        hubcore.list(url)
    left = all_paths(tmp_path)
    assert not [p for p in left if os.path.islink(p) or p.endswith("ESCAPED.txt")]
    assert not list((deep_home / "repos").rglob("hubconf.py"))
    assert not [p for p in (deep_home / "tmp").iterdir() if p.name.startswith("tree-")]


git_needed = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


@pytest.mark.parametrize("target", ["c/..", "c/c/../..", "d/x", "c/d/../../e"])
def test_git_tree_links_that_leave_through_links(tmp_path, target) -> None:
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import MemoryRepo

    from hubcore.sources.git import _write_tree

    repo = MemoryRepo()
    tree = Tree()
    entries = {"c": (".", True), "d": ("c/..", False), "e": ("c/../..", False)}
    for name, (text, keep) in entries.items():
        if keep or name in target:
            blob = Blob.from_string(text.encode())
            repo.object_store.add_object(blob)
            tree.add(name.encode(), 0o120000, blob.id)
    blob = Blob.from_string(target.encode())
    repo.object_store.add_object(blob)
    tree.add(b"a", 0o120000, blob.id)
    hub = Blob.from_string(b"dependencies = []\n")
    repo.object_store.add_object(hub)
    tree.add(b"hubconf.py", 0o100644, hub.id)
    repo.object_store.add_object(tree)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"t <t@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"evil"
    repo.object_store.add_object(commit)
    dest = tmp_path / "outer" / "inner" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(ArchiveError, match="leaves the archive"):
        _write_tree(repo, commit.id.decode(), dest, "evil")
    for link in dest.iterdir():
        if link.is_symlink():
            assert os.path.realpath(link).startswith(str(dest.resolve()))


def test_git_tree_with_legitimate_links(tmp_path) -> None:
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import MemoryRepo

    from hubcore.sources.git import _write_tree

    repo = MemoryRepo()

    def blob(data: bytes) -> bytes:
        b = Blob.from_string(data)
        repo.object_store.add_object(b)
        return b.id

    v2 = Tree()
    v2.add(b"w.txt", 0o100644, blob(b"weights"))
    repo.object_store.add_object(v2)
    models = Tree()
    models.add(b"v2", 0o040000, v2.id)
    models.add(b"latest", 0o120000, blob(b"v2"))
    repo.object_store.add_object(models)
    root = Tree()
    root.add(b"models", 0o040000, models.id)
    root.add(b"here", 0o120000, blob(b"."))
    root.add(b"w", 0o120000, blob(b"here/models/latest/w.txt"))
    root.add(b"run.sh", 0o100755, blob(b"#!/bin/sh\n"))
    repo.object_store.add_object(root)
    commit = Commit()
    commit.tree = root.id
    commit.author = commit.committer = b"t <t@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"ok"
    repo.object_store.add_object(commit)
    dest = tmp_path / "dest"
    dest.mkdir()
    _write_tree(repo, commit.id.decode(), dest, "ok")
    assert (dest / "models/latest/w.txt").read_text() == "weights"
    assert (dest / "w").read_text() == "weights"
    assert os.access(dest / "run.sh", os.X_OK)


@git_needed
def test_git_source_refuses_a_link_chain(tmp_path, deep_home) -> None:
    repos = tmp_path / "srv" / "repos"
    repos.mkdir(parents=True)
    repo = BareRepo(repos, "lab/evil")
    os.symlink(".", repo.work / "c")
    os.symlink("c/..", repo.work / "a")
    repo.commit({"hubconf.py": "dependencies = []\n"}, "evil")
    daemon = GitDaemon(repos).start()
    try:
        with pytest.raises(ArchiveError, match="leaves the archive"):
            hubcore.list(f"{daemon.url}/lab/evil.git@main")
    finally:
        daemon.stop()
    assert not list((deep_home / "repos").rglob("hubconf.py"))
    assert not [p for p in (deep_home / "tmp").iterdir() if p.name.startswith("tree-")]


def test_the_stdlib_data_filter_is_applied_to_links_too(tmp_path, dest, monkeypatch) -> None:
    """Every link also passes ``tarfile.data_filter``, whose refusals become ArchiveError;
    files and folders have stricter checks of their own (the tests above)."""
    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter")
    seen: list[str] = []

    def spy(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        seen.append(member.name)
        if member.name == "bad":
            raise tarfile.OutsideDestinationError(member, path)
        return member

    monkeypatch.setattr(tarfile, "data_filter", spy)
    spec: Spec = [("file", "top/a.py", b""), ("sym", "top/l", "a.py"), ("sym", "top/bad", "a.py")]
    with pytest.raises(ArchiveError, match=r"refusing 'top/bad'"):
        extract_spec(tmp_path, dest, tar_of(spec), "tar")
    assert seen == ["l", "bad"]
    extract_spec(tmp_path, dest, tar_of(spec[:2]), "tar")
    assert seen[2:] == ["l"]


@pytest.mark.parametrize(
    ("members", "refusal"),
    [
        ([("h.py", b"first"), ("./h.py", b"second")], "already a file"),  # which would win?
        ([("a/b", b"first"), ("a\\b", b"second")], "already a file"),
        ([("", b"x")], "needs a name"),
        ([("a" * 300, b"x")], "cannot hold the name"),
        ([("d/" + "b" * 300 + "/x", b"x")], "cannot hold the name"),
    ],
)
def test_tree_members_that_cannot_be_written_as_they_are_refused(
    tmp_path, members, refusal
) -> None:
    """A second file at one path (a hostile git tree can list one twice), a nameless file and
    a name the filesystem cannot hold are ArchiveErrors, never a silent choice or an OSError."""
    writer = TreeWriter(tmp_path)
    *first, (name, data) = members
    for earlier, content in first:
        writer.add_bytes(earlier, check_member_name(earlier), content, False)
    with pytest.raises(ArchiveError, match=refusal):
        writer.add_bytes(name, check_member_name(name), data, False)
