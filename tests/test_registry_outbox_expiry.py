"""Outbox entries nobody delivers (their webhook is configured nowhere any more) expire, on a
folder and on S3; entries of a webhook configured here are kept and delivered."""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore.registry as registry
from hubcore.cli import main
from hubcore.registry import notify
from hubcore.registry.store import LocalStore

from .test_registry import make_files
from .test_registry import reg_url as reg_url
from .test_registry_governance_notify import Receiver


def _dead_port() -> int:
    """A loopback port nothing listens on (a receiver that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _age(reg: registry.Registry, key: str, seconds: float) -> None:
    """Make the object at *key* look last written *seconds* ago."""
    if isinstance(reg.store, LocalStore):
        then = datetime.datetime.now().timestamp() - seconds
        os.utime(reg.store.root / key, (then, then))
        return
    from moto.backends import get_backend

    backend = get_backend("s3")["123456789012"]["aws"]
    stored = backend.get_object(reg.store.bucket, reg.store._key(key))
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    stored.last_modified = now - datetime.timedelta(seconds=seconds)


def _entries(reg: registry.Registry) -> list[str]:
    return sorted(i.key for i in reg.store.objects("outbox"))


@pytest.fixture
def stranded(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[registry.Registry, str, str]:
    """A registry with two undelivered entries of the webhook ``env`` (its receiver was down),
    one last written long ago; then nobody configures that webhook any more."""
    monkeypatch.chdir(tmp_path)  # no project hubcore.toml
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK", f"http://127.0.0.1:{_dead_port()}/hook")
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    reg.alias("clf:v0", "staging")
    old, young = _entries(reg)
    assert old.endswith("~env.json")
    assert young.endswith("~env.json")
    _age(reg, old, notify.ORPHAN_EXPIRY + 3600)
    # while the webhook is configured here, an old entry stays: it is retried, not dropped
    assert reg.gc(grace=3600)["notifications"] == 0
    assert _entries(reg) == [old, young]
    monkeypatch.delenv("HUBCORE_REGISTRY_WEBHOOK")
    return reg, old, young


def test_gc_drops_old_entries_of_a_webhook_nobody_configures(
    stranded: tuple[registry.Registry, str, str],
) -> None:
    reg, old, young = stranded
    assert reg.gc(grace=3600, dry_run=True)["notifications"] == 1
    assert _entries(reg) == [old, young]
    assert reg.gc(grace=3600)["notifications"] == 1
    assert _entries(reg) == [young]  # younger than the expiry: its deliverer may come back
    assert reg.gc(grace=3600)["notifications"] == 0


def test_flush_drops_old_entries_of_a_webhook_not_configured(
    stranded: tuple[registry.Registry, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flush by someone with no webhook, or with another one, drops the expired entries it
    cannot deliver and delivers its own."""
    reg, _old, young = stranded
    assert notify.flush(reg)["expired"] == 1
    assert _entries(reg) == [young]
    got = Receiver().start()
    try:
        config = Path.cwd() / "config.toml"  # another webhook, configured by name
        config.write_text(f'[registry.webhooks.other]\nurl = "{got.url}"\n')
        monkeypatch.setenv("HUBCORE_CONFIG", str(config))
        reg.alias("clf:v0", "production")  # its entry for 'other' is delivered at once
        assert _entries(reg) == [young]
        _age(reg, young, notify.ORPHAN_EXPIRY + 3600)
        result = CliRunner().invoke(
            main, ["registry", "notify", "--flush", "--registry", str(reg.store.url)]
        )
        assert result.exit_code == 0, result.output
        assert "expired 1" in result.output
    finally:
        got.stop()
    assert [r["body"]["text"] for r in got.received] == [
        f"clf: alias production set to v0 by {registry.actor()}"
    ]
    assert _entries(reg) == []
