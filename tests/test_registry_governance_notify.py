"""Webhook notifications of registry changes, against a loopback HTTP receiver: Slack-shaped
payloads, the outbox when the receiver is down, at-least-once with one idempotency key, and
the webhook URL (a secret) never shown."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import hubcore.registry as registry
from hubcore.cli import main
from hubcore.registry import notify

from .test_registry import make_files
from .test_registry import reg_url as reg_url

SECRET_PATH = "/services/T0001/B0002/s3cr3tKEYs3cr3t"


class Receiver:
    """A loopback webhook receiver: records every POST; answers from ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Receiver]:
    monkeypatch.chdir(tmp_path)  # no project hubcore.toml but the test's own
    got = Receiver().start()
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK", got.url)
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK_FILTER", "kinds=link,alias")
    yield got
    got.stop()


def flow(reg: registry.Registry, tmp_path: Path) -> None:
    for i in range(2):
        reg.log("clf", make_files(tmp_path / f"ck{i}", {"w.bin": f"w{i}"}), metadata={"acc": i})
    reg.link("clf:v1", "Image Classifier", aliases=["staging"])
    reg.alias("Image Classifier:staging", "production")


def test_one_slack_notification_per_link_and_alias_move(
    reg_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    reg = registry.open(reg_url)
    flow(reg, tmp_path)
    bodies = [r["body"] for r in receiver.received]
    assert [b["text"] for b in bodies] == [
        f"Image Classifier: linked v0 -> clf:v1 by {registry.actor()}",
        f"Image Classifier: alias staging set to v0 by {registry.actor()}",
        f"Image Classifier: alias production set to v0 by {registry.actor()}",
    ]
    for body in bodies:  # Slack's shape: text plus blocks of mrkdwn sections
        assert set(body) == {"text", "blocks"}
        assert body["blocks"][0]["type"] == "section"
        assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    snippet = bodies[2]["blocks"][-1]["text"]["text"]
    assert snippet == '```hubcore.load("registry:Image Classifier:production")```'
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.received]
    assert len(set(keys)) == 3
    assert [e["id"] for e in reg.history("Image Classifier")] == keys
    assert notify.pending(reg) == []
    # a move of an alias from one version to another says so
    reg.link("clf:v0", "Image Classifier")
    reg.alias("Image Classifier:v1", "production")
    assert receiver.received[-1]["body"]["text"].startswith(
        "Image Classifier: alias production moved v0 -> v1 by"
    )


def test_receiver_down_the_change_succeeds_and_flush_delivers_later(
    reg_url: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg = registry.open(reg_url)
    receiver.stop()  # nothing listens on the port now
    caplog.set_level(logging.DEBUG, logger="urllib3")  # its request lines name the path
    caplog.set_level(logging.DEBUG, logger="hubcore")
    flow(reg, tmp_path)
    assert reg.get("Image Classifier:production").number == 0  # the changes happened
    assert len(notify.pending(reg)) == 3
    status = CliRunner().invoke(main, ["registry", "notify", "--registry", reg_url])
    assert "pending: Image Classifier: linked v0 -> clf:v1" in status.output
    assert "connection refused" in status.output

    again = Receiver()  # the receiver comes back on the same port
    again.server.server_close()
    again.server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", receiver.port), again.server.RequestHandlerClass
    )
    again.thread = threading.Thread(target=again.server.serve_forever, daemon=True)
    again.start()
    try:
        result = CliRunner().invoke(main, ["registry", "notify", "--flush", "--registry", reg_url])
    finally:
        again.stop()
    assert result.exit_code == 0, result.output
    assert "delivered 3, failed 0" in result.output
    assert len(again.received) == 3
    assert notify.pending(reg) == []
    keys = [r["headers"]["Idempotency-Key"] for r in again.received]
    assert sorted(keys) == [e["id"] for e in reg.history("Image Classifier")]
    # the URL is a secret: in no output, log line, or registry object
    shown = status.output + result.output + caplog.text
    assert SECRET_PATH not in shown
    assert "s3cr3t" not in shown
    stored = "".join(
        reg.store.read(info.key)[0].decode(errors="replace")
        for info in reg.store.objects("")
        if not info.key.startswith("blobs/")
    )
    assert "s3cr3t" not in stored


def test_delivery_is_also_attempted_on_the_next_change(
    reg_url: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = registry.open(reg_url)
    flow(reg, tmp_path)
    receiver.received.clear()
    receiver.statuses = [503, 503]  # the next link's notification fails (twice) inline
    reg.link("clf:v0", "Image Classifier")
    assert len(notify.pending(reg)) == 1
    entry = notify.pending(reg)[0]
    assert entry["attempts"] == 1
    assert "503" in entry["error"]
    # make it due now, as the backoff would after a while
    for info in reg.store.objects("outbox"):
        data, tag = reg.store.read(info.key)
        record = json.loads(data)
        record["next"] = 0
        assert reg.store.swap(info.key, json.dumps(record).encode(), tag)
    reg.alias("Image Classifier:v1", "production")  # the next change delivers both
    assert notify.pending(reg) == []
    texts = [r["body"]["text"] for r in receiver.received if r["headers"].get("X-Hubcore-Event")]
    assert any(t.startswith("Image Classifier: linked v1 -> clf:v0") for t in texts)
    assert any("alias production moved v0 -> v1" in t for t in texts)


def test_500_then_200_delivers_at_most_twice_with_one_idempotency_key(
    reg_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    reg = registry.open(reg_url)
    for i in range(2):
        reg.log("clf", make_files(tmp_path / f"ck{i}", {"w.bin": f"w{i}"}))
    receiver.statuses = [500]
    reg.link("clf:v1", "Image Classifier")
    notify.flush(reg)
    assert notify.pending(reg) == []
    assert 1 <= len(receiver.received) <= 2
    assert len(receiver.received) == 2  # the 500, then the retry
    assert len({r["headers"]["Idempotency-Key"] for r in receiver.received}) == 1


def test_webhooks_from_hubcore_toml_with_filters_and_json_payloads(
    reg_url: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HUBCORE_REGISTRY_WEBHOOK")
    (tmp_path / "hubcore.toml").write_text(
        "[registry.webhooks.audit]\n"
        f'url = "{receiver.url}"\n'
        'format = "json"\n'
        'models = ["Image Classifier"]\n'
        'aliases = ["production"]\n'
    )
    reg = registry.open(reg_url)
    flow(reg, tmp_path)
    bodies = [r["body"] for r in receiver.received]
    # the link, and the production move (not staging, not the artifact's own logs)
    assert [b["event"]["kind"] for b in bodies] == ["link", "alias"]
    assert bodies[1]["event"]["alias"] == "production"
    assert bodies[1]["idempotency_key"] == bodies[1]["event"]["id"]
    assert bodies[1]["snippet"] == 'hubcore.load("registry:Image Classifier:production")'
    listed = CliRunner().invoke(main, ["registry", "notify", "--json", "--registry", reg_url])
    assert json.loads(listed.output)["webhooks"] == [
        {
            "name": "audit",
            "host": "127.0.0.1",
            "format": "json",
            "kinds": [],
            "models": ["Image Classifier"],
            "aliases": ["production"],
        }
    ]
    assert "s3cr3t" not in listed.output


def test_a_bad_webhook_configuration_is_a_clear_error_without_the_url(
    reg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK", "https://hooks.example/s3cr3t")
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK_FILTER", "colour=blue")
    result = CliRunner().invoke(main, ["registry", "notify", "--registry", reg_url])
    assert result.exit_code != 0
    assert "HUBCORE_REGISTRY_WEBHOOK_FILTER" in result.output
    assert "s3cr3t" not in result.output
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK_FILTER", "kinds=link")
    from hubcore import settings

    assert "s3cr3t" not in repr(settings.current())
    assert "s3cr3t" not in repr(notify.webhooks())


def test_a_bad_webhook_configuration_never_fails_a_change(
    reg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hubcore.toml").write_text(
        '[registry.webhooks.team]\nurl = "https://hooks.example/s3cr3t"\nkinds = ["dance"]\n'
    )
    reg = registry.open(reg_url)
    flow(reg, tmp_path)
    assert reg.get("Image Classifier:production").number == 0
    assert [e["kind"] for e in reg.history("Image Classifier")] == ["link", "alias", "alias"]
    assert "unknown kinds" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_a_hanging_receiver_holds_a_change_no_longer_than_the_budget(
    tmp_path: Path, hub_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "HUBCORE_REGISTRY_WEBHOOK", f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    )
    monkeypatch.setattr(notify, "INLINE_BUDGET", 1.0)
    reg = registry.open(tmp_path / "registry")
    reg.log("clf", make_files(tmp_path / "ck", {"w.bin": "w"}))  # one hanging delivery
    started = time.monotonic()
    reg.alias("clf:v0", "production")  # two more (the log's is due again only later)
    elapsed = time.monotonic() - started
    listener.close()
    # each request would wait 10 s, twice; the budget cuts the whole change's delivery short
    assert elapsed < 8.0
    assert reg.get("clf:production").number == 0
    assert len(notify.pending(reg)) == 2
