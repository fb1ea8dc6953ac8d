"""Credentials in URLs live in memory only: no output, log line or file of the hub home
shows them, whichever command touched the URL."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hubcore.store.redaction import redact, url_identity

pytest.importorskip("hubcore_numpy_example")

SECRET = "Pa55w0rdXYZ"


def weights_bytes() -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"weight": np.ones((3, 4), "float32"), "bias": np.zeros(3, "float32")})


def hubconf(good: str, bad: str) -> str:
    return f"""
from hubcore import Weights, pretrained
from hubcore_numpy_example import NumpyModel

dependencies = []


@pretrained({{"good": Weights({good!r}), "bad": Weights({bad!r})}}, default="good")
def linear():
    '''A linear layer.'''
    return NumpyModel({{"weight": (3, 4), "bias": (3,)}})
"""


def run(home: Path, cwd: Path, *args: str) -> str:
    env = {**os.environ, "HUBCORE_HOME": str(home), "HUBCORE_TRUST": "*"}
    done = subprocess.run(
        [sys.executable, "-c", "from hubcore.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def test_no_command_shows_or_stores_url_credentials(tmp_path, file_server) -> None:
    base = file_server.url.replace("http://", f"http://user:{SECRET}@")
    file_server.add("w.safetensors", weights_bytes())
    file_server.add("bad.safetensors", b"not safetensors at all")
    good = f"{base}/w.safetensors?token={SECRET}&X-Amz-Signature={SECRET}&v=1"
    bad = f"{base}/bad.safetensors?X-Amz-Credential={SECRET}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hub/hubconf.py", hubconf(good, bad))
    file_server.add("hub.zip", archive.getvalue())
    repo = f"{base}/hub.zip?sig={SECRET}"
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()

    outputs = [
        run(home, work, "list", repo, "--verbose"),
        run(home, work, "help", repo, "linear"),
        run(home, work, "check", repo, "--verify"),
        run(home, work, "lock", repo),
        run(home, work, "-vv", "load", repo, "linear", "--pretrained"),
        run(home, work, "-vv", "load", repo, "linear", "--pretrained", "bad", "--trust"),
        run(home, work, "-vv", "download", good),
        run(home, work, "--offline", "download", good.replace("w.safetensors", "none.bin")),
        run(home, work, "cache", "ls"),
    ]
    joined = "\n".join(outputs)
    assert "linear" in outputs[0], joined
    weights_line = [line for line in outputs[4].splitlines() if line.startswith("weights: ")]
    assert weights_line, joined
    assert "w.safetensors" in weights_line[0], joined  # the weights applied, not the archive
    assert "safetensors" in outputs[5], joined
    assert "127.0.0.1" in joined  # URLs are shown, only without their secrets
    assert SECRET not in joined, joined
    assert (work / "hub.lock").is_file()
    # the repository's own files (its archive and snapshot) hold the URLs as published
    content = {*home.glob("blobs/**/*"), *home.glob("repos/**/snapshots/**/*")}
    written = [p for p in home.rglob("*") if p.is_file() and p not in content]
    assert any(p.parent.name == "urls" for p in written)
    leaking = [p for p in [*written, work / "hub.lock"] if SECRET.encode() in p.read_bytes()]
    assert leaking == []


@pytest.mark.parametrize(
    ("url", "shown", "stored"),
    [
        (
            "https://u:p@h:8/w.pth?X-Amz-Signature=s&X-Amz-Credential=c&v=1#sha256=abcdef0123",
            "https://h:8/w.pth#sha256=abcdef0123",
            "https://h:8/w.pth?v=1#sha256=abcdef0123",
        ),
        (
            "https://drive.example/uc?id=A&token=t",
            "https://drive.example/uc",
            "https://drive.example/uc?id=A",
        ),
        (
            "https://edge.example/w.pth?hdnts=exp=1~hmac=ab&hmac=cd&session_id=s&file=w",
            "https://edge.example/w.pth",
            "https://edge.example/w.pth?file=w",
        ),
        (  # an Azure SAS: every field but the object's own parameters changes per signing
            "https://a.blob.example/c/w.pth?sv=1&ss=b&srt=o&sp=r&se=2&st=1&spr=https&sr=b&sig=S",
            "https://a.blob.example/c/w.pth",
            "https://a.blob.example/c/w.pth",
        ),
        (  # the same short names without a signature are the file's own parameters
            "https://audio.example/w.pth?sr=16000&st=1&policy=v2&expires=never",
            "https://audio.example/w.pth",
            "https://audio.example/w.pth?sr=16000&st=1&policy=v2&expires=never",
        ),
        (  # SAS fields beside a signature of another kind are the file's own
            "https://m.example/model?sr=16000&signature=a",
            "https://m.example/model",
            "https://m.example/model?sr=16000",
        ),
        (  # a CDN token's expiry belongs to the token: one identity across signings
            "https://b.example/w.pth?token=T&expires=1700000000",
            "https://b.example/w.pth",
            "https://b.example/w.pth",
        ),
        (  # CloudFront: the policy and key pair belong to the signature
            "https://cdn.example/w.pth?Policy=P&Signature=S&Key-Pair-Id=K&v=2",
            "https://cdn.example/w.pth",
            "https://cdn.example/w.pth?v=2",
        ),
        ("git+ssh://git@host/r.git", "git+ssh://host/r.git", "git+ssh://host/r.git"),
        ("acme/models:main", "acme/models:main", "acme/models:main"),
    ],
)
def test_one_redactor_for_showing_one_identity_for_storing(url, shown, stored) -> None:
    assert redact(url) == shown
    assert url_identity(url) == stored


def test_redactor_covers_free_text_and_request_lines() -> None:
    text = 'cannot fetch https://a:b@h/x?sig=1: "GET /w.pth?X-Amz-Signature=zz HTTP/1.1" token=abc'
    shown = redact(text)
    for secret in ("a:b", "sig=1", "X-Amz-Signature", "abc"):
        assert secret not in shown
    assert "https://h/x" in shown
    assert "GET /w.pth HTTP/1.1" in shown


@pytest.mark.parametrize(
    "said",
    [
        "signature=s3cr3tvalue rejected",
        "secret=s3cr3tvalue rejected",
        "passwd: s3cr3tvalue rejected",
        "Authorization: Bearer s3cr3tvalue rejected",
        "token=s3cr3tvalue rejected",
        "Invalid credentials: access_token=s3cr3tvalue rejected",
        "x_auth_token: s3cr3tvalue rejected",
        "password=abc,s3cr3tvalue rejected",
        "headers {'Authorization': 'Bearer s3cr3tvalue'} rejected",
    ],
)
def test_library_errors_and_messages_hide_the_same_secrets(said: str) -> None:
    """A library's error text (``describe_failure``) and any message (``redact``) go through
    one set of rules: a word one of them hides, the other hides too."""
    from hubcore.store.http import describe_failure

    assert "s3cr3tvalue" not in redact(said)
    assert "s3cr3tvalue" not in describe_failure(RuntimeError(said))
    assert "rejected" in describe_failure(RuntimeError(said))
