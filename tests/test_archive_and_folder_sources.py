"""Archive URLs (zip, tar.gz) over loopback HTTP, and folders on S3/OSS through moto."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import ArchiveError, IntegrityError, InvalidReferenceError, OfflineError

from .gitserver import GitHostServer

HUB = {
    "hubconf.py": "from helpers import answer\n\ndependencies = []\n",
    "helpers.py": "def answer():\n    '''The answer.'''\n    return {value}\n",
}


def hub_files(value: int) -> dict[str, str]:
    return {k: v.replace("{value}", str(value)) for k, v in HUB.items()}


def make_zip(files: dict[str, str], top: str = "hub-1.0/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(top + name, text)
    return buf.getvalue()


def make_tgz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def web(tmp_path: Path):
    (tmp_path / "srv" / "repos").mkdir(parents=True)
    (tmp_path / "srv" / "files").mkdir()
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    server.files = tmp_path / "srv" / "files"  # type: ignore[attr-defined]
    yield server
    server.stop()


def publish(web, name: str, data: bytes) -> str:
    (web.files / name).write_bytes(data)
    return f"{web.url}/files/{name}"


def test_zip_and_tgz_archives(hub_home, web) -> None:
    zip_url = publish(web, "hub-1.0.zip", make_zip(hub_files(1)))
    tgz_url = publish(web, "hub-2.0.tar.gz", make_tgz(hub_files(2)))
    assert hubcore.list(zip_url) == ["answer"]
    assert hubcore.load(zip_url, "answer") == 1
    assert hubcore.load(tgz_url, "answer") == 2


def test_pinned_archive_costs_nothing_once_cached(hub_home, web) -> None:
    data = make_zip(hub_files(3))
    url = publish(web, "pinned.zip", data)
    sha = hubcore.file_sha256(web.files / "pinned.zip")
    assert hubcore.load(f"{url}#sha256={sha}", "answer") == 3
    web.reset_log()
    assert hubcore.load(f"{url}#sha256={sha}", "answer") == 3
    assert web.paths() == []


def test_unpinned_archive_is_revalidated(hub_home, web) -> None:
    url = publish(web, "moving.zip", make_zip(hub_files(4)))
    assert hubcore.load(url, "answer") == 4
    web.reset_log()
    assert hubcore.load(url, "answer") == 4
    assert all(method == "HEAD" for method, _, _ in web.log)
    publish(web, "moving.zip", make_zip(hub_files(5)))
    assert hubcore.load(url, "answer") == 5


def test_wrong_pin_and_not_an_archive(hub_home, web) -> None:
    url = publish(web, "a.zip", make_zip(hub_files(6)))
    with pytest.raises(IntegrityError):
        hubcore.list(f"{url}#sha256={'0' * 64}")
    bad = publish(web, "fake.zip", b"<html>not found</html>")
    with pytest.raises(ArchiveError, match="neither a zip nor a tar"):
        hubcore.list(bad)
    with pytest.raises(InvalidReferenceError, match="sha256="):
        hubcore.list(f"{url}#md5=abc")


def test_archive_offline(hub_home, web, monkeypatch) -> None:
    url = publish(web, "off.zip", make_zip(hub_files(7)))
    hubcore.load(url, "answer")
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    web.reset_log()
    assert hubcore.load(url, "answer") == 7
    assert web.paths() == []
    with pytest.raises(OfflineError):
        hubcore.load(publish(web, "never.zip", make_zip(hub_files(8))), "answer")


# -- object stores through moto --------------------------------------------------------------


@pytest.fixture
def moto_url(s3_server):
    return s3_server


@pytest.fixture
def bucket(moto_url, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=moto_url)
    name = f"hubs-{abs(hash(monkeypatch)) % 10**8}"
    client.create_bucket(Bucket=name)

    def put(key: str, data: bytes) -> None:
        client.put_object(Bucket=name, Key=key, Body=data)

    return name, put


def test_s3_folder(hub_home, moto_url, bucket) -> None:
    name, put = bucket
    for rel, text in hub_files(9).items():
        put(f"acme/{rel}", text.encode())
    options = {"client_kwargs": {"endpoint_url": moto_url}}
    ref = f"s3://{name}/acme/"
    assert hubcore.list(ref, storage_options=options) == ["answer"]
    first = hubcore.open_repo(ref, storage_options=options)
    assert hubcore.load(ref, "answer", storage_options=options) == 9
    assert hubcore.open_repo(ref, storage_options=options).root == first.root  # unchanged
    put("acme/helpers.py", HUB["helpers.py"].replace("{value}", "10").encode())
    changed = hubcore.open_repo(ref, storage_options=options)
    assert changed.snapshot_id != first.snapshot_id
    assert hubcore.load(ref, "answer", storage_options=options) == 10


def test_oss_through_its_s3_compatible_endpoint(hub_home, moto_url, bucket, monkeypatch) -> None:
    name, put = bucket
    for rel, text in hub_files(11).items():
        put(f"m/{rel}", text.encode())
    monkeypatch.setenv("HUBCORE_OSS_ENDPOINT", moto_url)
    assert hubcore.load(f"oss://{name}/m", "answer") == 11


def test_weights_from_s3(hub_home, moto_url, bucket, monkeypatch, make_hub_repo) -> None:
    name, put = bucket
    put("w/blob.bin", b"weights" * 100)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    path = hubcore.download(f"s3://{name}/w/blob.bin")
    assert path.read_bytes() == b"weights" * 100


def test_missing_folder_and_missing_hubconf(hub_home, moto_url, bucket) -> None:
    from hubcore.errors import HubconfNotFoundError, RepoNotFoundError

    name, put = bucket
    options = {"client_kwargs": {"endpoint_url": moto_url}}
    with pytest.raises(RepoNotFoundError):
        hubcore.list(f"s3://{name}/nothing-here", storage_options=options)
    put("nohub/readme.txt", b"x")
    with pytest.raises(HubconfNotFoundError):
        hubcore.list(f"s3://{name}/nohub", storage_options=options)


@pytest.mark.parametrize(
    ("member", "why"),
    [("hub-1.0/../../escape.py", "'..'"), ("/abs/escape.py", "absolute")],
)
def test_malicious_archive_through_the_source(hub_home, web, tmp_path, member, why) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hub-1.0/hubconf.py", HUB["hubconf.py"])
        zf.writestr(member, "print('escaped')")
    url = publish(web, "evil.zip", buf.getvalue())
    with pytest.raises(ArchiveError, match=why.replace(".", r"\.")):
        hubcore.list(url)
    assert not list((hub_home / "repos").rglob("hubconf.py"))
    assert not list(tmp_path.rglob("escape.py"))
    tmp = hub_home / "tmp"
    assert not [p for p in tmp.iterdir() if p.name.startswith("tree-")]
