"""The HTTP engine under fault injection: every case ends verified or with a clear HubError,
and the cache never holds anything corrupt."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import AuthenticationError, DownloadError, IntegrityError
from hubcore.store.downloader import HttpDownload

from .fileserver import FileServer

SIZE = 3 << 20  # 3 MiB: 48 chunks of 64 KiB


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture(params=["parallel", "stream"])
def fast_settings(monkeypatch, request):
    """Small chunks; every test runs with several connections and with one stream."""
    fast_link = "1000000" if request.param == "parallel" else "0"
    monkeypatch.setenv("HUBCORE_FAST_LINK_MBPS", fast_link)
    monkeypatch.setenv("HUBCORE_CHUNK_MB", "0.0625")  # 64 KiB chunks
    monkeypatch.setenv("HUBCORE_PARALLEL_MIN_MB", "1")
    monkeypatch.setenv("HUBCORE_CONNECTIONS", "4")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_RETRIES", "4")


@pytest.fixture
def server(file_server: FileServer) -> FileServer:
    return file_server


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_clean_cache(home: Path) -> None:
    """Only verified blobs: each blob's name is the sha256 of its bytes; no partial left."""
    for blob in (home / "blobs").rglob("*"):
        if blob.is_file():
            assert hubcore.file_sha256(blob) == blob.name
    partial = home / "tmp" / "partial"
    assert not partial.exists() or not any(partial.iterdir())


def test_download_is_exact(hub_home, fast_settings, server, data, request) -> None:
    url = server.add("w.bin", data)
    path = hubcore.download(url, sha256=sha(data))
    assert path.read_bytes() == data
    assert server.bytes_sent == SIZE
    ranges = [h.get("Range") for _, h in server.requests()]
    assert all(r and r.startswith("bytes=") for r in ranges)
    if "parallel" in request.node.name:
        assert len(ranges) == 48  # one request per chunk, over several connections
    else:
        assert ranges == ["bytes=0-65535", f"bytes=65536-{SIZE - 1}"]  # probe, then the rest
    assert_clean_cache(hub_home)


def test_small_file_single_stream(hub_home, server, data) -> None:
    url = server.add("small.bin", data[:1000])
    assert hubcore.download(url).read_bytes() == data[:1000]
    assert len(server.requests()) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"cut_after": 10_000},
        {"short_body": True},
        {"reset_after": 20_000},
        {"stall_after": 1000, "stall_seconds": 3},
        {"cut_after": 5000, "times": 3},
    ],
    ids=["cut", "short", "reset", "stall", "cut-three-times"],
)
def test_stream_faults_are_retried(hub_home, fast_settings, server, data, fault) -> None:
    for key, value in fault.items():
        setattr(server.faults, key, value)
    url = server.add("w.bin", data)
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert_clean_cache(hub_home)


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_transient_statuses_honour_retry_after(
    hub_home, fast_settings, server, data, status
) -> None:
    server.faults.errors = [(status, 1), (status, 1)]
    url = server.add("w.bin", data)
    began = time.monotonic()
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert time.monotonic() - began >= 2  # two Retry-After: 1 waits


def test_persistent_errors_give_up(hub_home, fast_settings, server, data) -> None:
    server.faults.errors = [(503, 0)] * 10
    url = server.add("w.bin", data)
    with pytest.raises(DownloadError, match="HTTP 503"):
        hubcore.download(url)
    assert len(server.requests()) == 4
    assert_clean_cache(hub_home)


def test_stall_budget_bounds_a_stalled_download(hub_home, server, data, monkeypatch) -> None:
    # Fifty attempts of 0.5 s reads with backoff would take minutes; the budget stops at 2 s
    # (with few attempts, a slow machine could run out of attempts first: not the point here).
    # Every attempt sends the same first 64 KiB before it stalls (no Range: a retry starts
    # over): bytes fetched again give back only the time they took, not the stall before them,
    # or each retry would restart the clock (loaded machines took 15-21 s).
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "60")  # cut to the budget left
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("HUBCORE_RETRIES", "50")
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "2")
    server.faults.stall_after = 1000
    server.faults.stall_seconds = 60
    server.faults.times = 100
    server.faults.ignore_range = True  # with Range, a retry resumes: new bytes, not a stall
    url = server.add("w.bin", data)
    began = time.monotonic()
    with pytest.raises(DownloadError) as info:
        hubcore.download(url)
    # Without the budget, fifty attempts take minutes; with it, the budget and a little slack
    # for a loaded machine (the attempt under way when it runs out ends then).
    assert time.monotonic() - began < 2 + 3
    message = str(info.value)
    assert type(info.value) is DownloadError
    assert "HUBCORE_STALL_BUDGET" in message
    assert "attempt" in message
    assert "timed out" in message


def test_a_steady_refetch_is_not_a_stall(hub_home, server, monkeypatch) -> None:
    # No Range: after the drop at 90 % the whole file comes again, which takes longer than
    # the budget; the bytes flow all the while, so that is not a stall.
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "1")
    monkeypatch.setenv("HUBCORE_RETRIES", "3")
    body = os.urandom(1 << 20)
    server.rate_limit = 512 << 10  # the 900 KiB fetched again take about 1.8 s
    server.faults.ignore_range = True
    server.faults.cut_after = 900 << 10
    url = server.add("w.bin", body)
    assert hubcore.download(url, sha256=sha(body)).read_bytes() == body
    assert len(server.requests()) == 2


def test_a_server_resending_the_same_start_runs_out_of_budget(hub_home, server, data, tmp_path):
    # No Range; every attempt gets the same first 64 KiB at once and then nothing. Bytes fetched
    # again give back only the time they took to come, so the stall between attempts adds up:
    # the budget ends it, not fifty short attempts (with a short backoff, ~0.2 s each).
    from hubcore.records import replace
    from hubcore.store.downloader import download_settings

    server.faults.stall_after = 1000
    server.faults.stall_seconds = 60
    server.faults.times = 100
    server.faults.ignore_range = True
    url = server.add("w.bin", data)
    quick = replace(
        download_settings(),
        read_timeout=0.2,
        attempts=50,
        backoff=0.01,
        max_backoff=0.01,
        stall_budget=1.0,
    )
    began = time.monotonic()
    download = HttpDownload(url, tmp_path / "w.part", tmp_path / "w.meta", settings=quick)
    with pytest.raises(DownloadError, match="HUBCORE_STALL_BUDGET=1"):
        download.run()
    assert time.monotonic() - began < 1 + 3
    assert len(server.requests()) < 50


def test_a_broken_chunk_resumes_where_it_broke(hub_home, fast_settings, server, data, monkeypatch):
    # The first response (chunk 0, of 1 MiB) breaks after 700,000 bytes: the retry asks for
    # the rest of that chunk only, so no byte is fetched twice.
    monkeypatch.setenv("HUBCORE_CHUNK_MB", "1")
    server.faults.cut_after = 700_000
    url = server.add("w.bin", data)
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert "bytes=700000-1048575" in [h.get("Range") for _, h in server.requests()]
    assert server.bytes_sent == len(data)


def test_a_broken_stream_resumes_where_it_broke(hub_home, server, data, tmp_path, monkeypatch):
    # One stream fetches the rest after the first chunk; it breaks inside chunk 1, and the
    # retry resumes at the byte it broke at (the hash still covers every byte once).
    for name, value in (("FAST_LINK_MBPS", "0"), ("CHUNK_MB", "1"), ("PARALLEL_MIN_MB", "1")):
        monkeypatch.setenv(f"HUBCORE_{name}", value)
    url = server.add("w.bin", data)
    received = 0

    def on_bytes(count: int) -> None:
        nonlocal received
        received += count
        if received >= 1 << 20 and server.faults.cut_after is None:
            server.faults.cut_after = 500_000  # the next response: the stream of the rest

    download = HttpDownload(url, tmp_path / "w.part", tmp_path / "w.meta", on_bytes=on_bytes)
    assert download.run() == (sha(data), len(data))
    assert (tmp_path / "w.part").read_bytes() == data
    ranges = [h.get("Range") for _, h in server.requests()]
    assert ranges[1:] == [
        f"bytes={1 << 20}-{len(data) - 1}",
        f"bytes={(1 << 20) + 500_000}-{len(data) - 1}",
    ], ranges
    assert server.bytes_sent == len(data)


@pytest.mark.parametrize(("status", "error"), [(404, DownloadError), (403, AuthenticationError)])
def test_hopeless_statuses_are_not_retried(hub_home, fast_settings, server, status, error) -> None:
    server.faults.errors = [(status, None)]
    url = server.add("w.bin", b"x")
    with pytest.raises(error):
        hubcore.download(url)
    assert len(server.requests()) == 1


def test_server_ignoring_range(hub_home, fast_settings, server, data) -> None:
    server.faults.ignore_range = True
    url = server.add("w.bin", data)
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert len(server.requests()) == 1  # the whole body came with the first answer


def test_file_changing_between_attempts(hub_home, fast_settings, server, data) -> None:
    new = os.urandom(SIZE)
    server.faults.cut_after = 10_000
    server.faults.change_after_requests = 1
    server.faults.changed_content = new
    url = server.add("w.bin", data)
    path = hubcore.download(url)
    assert path.read_bytes() == new  # never a mixture of both versions
    assert_clean_cache(hub_home)


def test_wrong_bytes_fail_verification(hub_home, fast_settings, server, data) -> None:
    server.faults.wrong_bytes = True
    url = server.add("w.bin", data)
    with pytest.raises(IntegrityError):
        hubcore.download(url, sha256=sha(data))
    assert_clean_cache(hub_home)
    assert not (hub_home / "urls").exists() or not any((hub_home / "urls").iterdir())


def test_hash_prefix_in_file_name(hub_home, server, data) -> None:
    good = server.add(f"model-{sha(data)[:10]}.pth", data)
    assert hubcore.download(good).read_bytes() == data
    bad = server.add("model-0123456789abcdef.pth", data)
    with pytest.raises(IntegrityError, match="0123456789abcdef"):
        hubcore.download(bad)
    short = server.add("model-abc.pth", data)  # fewer than 8 hex digits: not a hash
    assert hubcore.download(short).read_bytes() == data
    dated = server.add("model-20240101.pth", data)  # digits only: a date, not a hash
    assert hubcore.download(dated).read_bytes() == data


def test_redirects_and_credentials(hub_home, fast_settings, server, data, tmp_path) -> None:
    other = FileServer(tmp_path / "other", host="localhost").start()
    try:
        other.add("w.bin", data)
        server.redirects["/w.bin"] = f"{other.url}/w.bin"
        host = server.url.removeprefix("http://")
        path = hubcore.download(f"http://user:pa55@{host}/w.bin", sha256=sha(data))
        assert path.read_bytes() == data
        assert "Authorization" in server.requests()[0][1]
        assert other.requests()
        assert all("Authorization" not in headers for _, headers in other.requests())
    finally:
        other.stop()


def test_progress_events(hub_home, fast_settings, server, data) -> None:
    from hubcore.plugins import get_plugins

    seen: list[tuple[str, int | None]] = []

    class Listener:
        @hubcore.hookimpl
        def hubcore_download_started(self, url, total):
            seen.append(("start", total))

        @hubcore.hookimpl
        def hubcore_download_progress(self, url, done, total):
            seen.append(("progress", done))

    get_plugins().manager.register(Listener())
    hubcore.download(server.add("w.bin", data))
    assert seen[0] == ("start", SIZE)
    assert seen[-1] == ("progress", SIZE)


# -- several processes ------------------------------------------------------------------------


def _download_in_child(args: tuple[str, str]) -> str:
    home, url = args
    os.environ["HUBCORE_HOME"] = home
    os.environ["HUBCORE_DISABLE_PROGRESS"] = "1"
    import hubcore as hc

    return str(hc.download(url))


def test_eight_processes_one_transfer(hub_home, server, data, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_CHUNK_MB", "0.25")
    url = server.add("big.bin", data)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        paths = pool.map(_download_in_child, [(str(hub_home), url)] * 8)
    assert len(set(paths)) == 1
    assert Path(paths[0]).read_bytes() == data
    assert server.bytes_sent == SIZE  # exactly one full transfer at the server


def test_sigkill_then_resume(hub_home, tmp_path, data) -> None:
    slow = FileServer(tmp_path / "slow", rate_limit=1 << 20).start()  # 1 MiB/s per connection
    try:
        url = slow.add("w.bin", data)
        env = {
            **os.environ,
            "HUBCORE_HOME": str(hub_home),
            "HUBCORE_CHUNK_MB": "0.125",
            "HUBCORE_CONNECTIONS": "1",
            "HUBCORE_DISABLE_PROGRESS": "1",
        }
        child = subprocess.Popen(
            [sys.executable, "-c", f"import hubcore; hubcore.download({url!r})"], env=env
        )
        meta_dir = hub_home / "tmp" / "partial"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metas = list(meta_dir.glob("*.json")) if meta_dir.exists() else []
            if metas and '"done": [0, 1, 2' in metas[0].read_text():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the download did not make progress")
        child.send_signal(signal.SIGKILL)
        child.wait()
        time.sleep(0.5)  # let the server notice the dead connection before counting
        first_run = slow.bytes_sent
        assert 0 < first_run < SIZE
        slow.reset_counters()
        slow.rate_limit = None
        os.environ.update({k: env[k] for k in ("HUBCORE_CHUNK_MB", "HUBCORE_CONNECTIONS")})
        try:
            path = hubcore.download(url, sha256=sha(data))
        finally:
            for key in ("HUBCORE_CHUNK_MB", "HUBCORE_CONNECTIONS"):
                os.environ.pop(key, None)
        assert path.read_bytes() == data
        done_before = 3 * (128 << 10)  # at least chunks 0-2 were on disk
        assert slow.bytes_sent <= SIZE - done_before  # and were not fetched again
        assert_clean_cache(hub_home)
    finally:
        slow.stop()


@pytest.mark.parametrize(
    ("where", "why"),
    [("hubcore-test-host.invalid", "host name not found"), ("127.0.0.1:{port}", "refused")],
)
def test_a_host_never_reached_fails_at_once(hub_home, caplog, where, why) -> None:
    import logging
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.INFO, logger="hubcore")
    url = f"http://{where.format(port=port)}/w.bin"
    with pytest.raises(DownloadError, match=why) as info:
        hubcore.download(url)
    assert "HUBCORE_OFFLINE=1" in str(info.value)
    assert "retrying" not in caplog.text  # not taken for a passing network hiccup


@pytest.mark.parametrize("url", ["http:///w.bin", "https://user:pw@/w.bin", "http://:8080/w"])
def test_a_url_without_a_host_is_refused_at_once(hub_home, caplog, url) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="hubcore")
    with pytest.raises(DownloadError, match="names no host") as info:
        hubcore.download(url)
    assert "pw" not in str(info.value)
    assert "retrying" not in caplog.text


def test_a_dripping_server_cannot_outlast_the_stall_budget(hub_home, monkeypatch) -> None:
    """One byte every 0.2 s never trips a read timeout; the budget still ends it."""
    import socket
    import threading

    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "2")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_RETRIES", "3")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                listener.settimeout(0.5)
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
                while not stop.is_set():
                    try:
                        conn.sendall(b"x")
                    except OSError:
                        break
                    time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(DownloadError, match=r"too slow|stall budget"):
            hubcore.download(f"http://127.0.0.1:{listener.getsockname()[1]}/drip.bin")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert time.monotonic() - started < 2 + 3  # the budget (without it: 10^7 x 0.2 s)


def test_pieces_are_written_in_order_past_the_batch_limit(tmp_path: Path) -> None:
    """A read's pieces go to the file as they came, without joining them first (more pieces
    than one pwritev call takes, and empty ones, included)."""
    from hubcore.store.downloader import _pwrite_pieces

    pieces = [bytes([i % 251]) * (i % 7) for i in range(1500)]
    path = tmp_path / "out"
    path.write_bytes(b"\0" * 5)
    fd = os.open(path, os.O_RDWR)
    try:
        assert _pwrite_pieces(fd, pieces, 5) == sum(map(len, pieces))
    finally:
        os.close(fd)
    assert path.read_bytes() == b"\0" * 5 + b"".join(pieces)
