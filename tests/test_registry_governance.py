"""Registry governance: registered models (linking), runs and lineage, cards, history and the
plugin hook, through the API and the CLI, on a local folder and on S3 (moto)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import hubcore
import hubcore.registry as registry
from hubcore.cli import main
from hubcore.plugins import get_plugins

from .test_registry import make_files
from .test_registry import reg_url as reg_url


@pytest.fixture
def reg(reg_url: str) -> registry.Registry:
    return registry.open(reg_url)


def checkpoints(reg: registry.Registry, tmp_path: Path, count: int, name: str = "clf") -> None:
    for i in range(count):
        folder = make_files(tmp_path / f"ck{i}", {"w.bin": f"weights {i}"})
        reg.log(name, folder, metadata={"acc": i / 10})


def cli(*args: str) -> Any:
    result = CliRunner().invoke(main, ["registry", *args], catch_exceptions=False)
    return result


# -- registered models ------------------------------------------------------------------------
def test_link_numbers_its_own_versions_and_resolves_to_the_artifact(
    reg: registry.Registry, tmp_path: Path
) -> None:
    checkpoints(reg, tmp_path, 5)
    first = reg.link(
        "clf:v3", "Image Classifier", aliases=["staging"], description="Best", tags=["vision"]
    )
    second = reg.link("clf:v4", "Image Classifier")
    assert (str(first), str(second)) == ("Image Classifier:v0", "Image Classifier:v1")
    assert first.link == ("clf", 3)
    assert first.digest == reg.get("clf:v3").digest
    # linking the same content again is the same version, and moves the aliases given
    again = reg.link("clf:v3", "Image Classifier", aliases=["production"])
    assert again.number == 0
    got = reg.get("Image Classifier:production")
    assert (got.number, got.source().name, got.source().number) == (0, "clf", 3)
    assert (got.download() / "w.bin").read_text() == "weights 3"
    assert reg.collection("Image Classifier")["description"] == "Best"
    assert reg.collection("Image Classifier")["tags"] == ["vision"]
    assert reg.registered_models() == ["Image Classifier"]
    assert reg.links("clf", 3) == [("Image Classifier", 0)]
    # the alias moves with the same compare-and-swap as an artifact's
    reg.alias("Image Classifier:v1", "production")
    assert reg.aliases("Image Classifier")["production"] == 1
    assert reg.aliases("clf").get("production") is None  # the artifact's aliases are its own


def test_unlink_keeps_the_artifact_and_kinds_do_not_mix(
    reg: registry.Registry, tmp_path: Path
) -> None:
    checkpoints(reg, tmp_path, 2)
    reg.link("clf:v1", "Image Classifier", aliases=["staging"])
    with pytest.raises(registry.AliasInUseError, match="staging"):
        reg.unlink("Image Classifier:v0")
    reg.unlink("Image Classifier:v0", force=True)
    with pytest.raises(registry.VersionNotFoundError):
        reg.get("Image Classifier:v0")
    assert reg.get("clf:v1").number == 1  # the artifact stays
    with pytest.raises(registry.RegistryError, match="not a registered model"):
        reg.unlink("clf:v1")
    with pytest.raises(registry.RegistryError, match="is a registered model"):
        reg.log("Image Classifier", {"x": make_files(tmp_path / "x", {"x": "x"}) / "x"})
    with pytest.raises(registry.RegistryError, match="not a registered model"):
        reg.link("clf:v0", "clf")
    kinds = [e["kind"] for e in reg.history("Image Classifier")]
    assert kinds == ["link", "alias", "unalias", "unlink"]
    assert "linked" in [e["kind"] for e in reg.history("clf")]


def test_registered_model_with_spaces_loads_through_the_link(
    reg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBCORE_REGISTRY", reg_url)
    reg = registry.open()
    hub = make_files(
        tmp_path / "hub",
        {"hubconf.py": "def answer(x=1):\n    'The answer.'\n    return 41 + x\n"},
    )
    reg.log("answer-repo", hub, type="code")
    reg.link("answer-repo:latest", "Answer Model", aliases=["production"])
    assert hubcore.load("registry:Answer Model:production", "answer") == 42


# -- history ----------------------------------------------------------------------------------
def test_every_change_is_in_the_history_with_actor_before_and_after(
    reg: registry.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBCORE_REGISTRY_ACTOR", "ci-bot")
    checkpoints(reg, tmp_path, 2)
    reg.update("clf:v0", metadata={"acc": 0.5})
    reg.link("clf:v1", "Image Classifier", aliases=["staging"])
    reg.alias("Image Classifier:staging", "production")
    reg.describe("Image Classifier", description="Classifies")
    reg.set_card("Image Classifier", "---\ntitle: IC\n---\nHello\n")
    reg.delete("clf:v0")
    events = reg.history("clf") + reg.history("Image Classifier")
    assert {e["who"] for e in events} == {"ci-bot"}
    assert all("before" in e and "after" in e and e["when"] for e in events)
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["update"]["before"] == {"metadata": {"acc": 0.0}}
    assert by_kind["update"]["after"] == {"metadata": {"acc": 0.5}}
    assert by_kind["log"]["before"] is None
    assert by_kind["log"]["after"]["version"] in (0, 1)
    assert by_kind["delete"]["before"]["version"] == 0
    assert by_kind["delete"]["after"] is None
    assert by_kind["describe"]["after"] == {"description": "Classifies"}
    assert by_kind["card"]["after"]["size"] == len("---\ntitle: IC\n---\nHello\n")
    moves = [(e["before"], e["after"]) for e in events if e["kind"] == "alias"]
    assert moves == [(None, {"version": 0}), (None, {"version": 0})]
    result = cli("history", "Image Classifier", "--registry", str(reg))
    assert result.exit_code == 0
    assert "ci-bot  link v0 -> clf:v1" in result.output
    assert 'describe description: "" -> "Classifies"' in result.output


def test_the_plugin_hook_hears_each_change_and_a_failing_listener_is_isolated(
    reg: registry.Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[dict[str, Any]] = []

    class Broken:
        @hubcore.hookimpl
        def hubcore_registry_event(self, event: Any) -> None:
            raise RuntimeError("listener bug")

    class Listener:
        @hubcore.hookimpl
        def hubcore_registry_event(self, event: Any) -> None:
            heard.append(dict(event))

    manager = get_plugins().manager
    listener, broken = Listener(), Broken()
    manager.register(listener)
    manager.register(broken)
    try:
        checkpoints(reg, tmp_path, 1)
        reg.link("clf:v0", "Image Classifier", aliases=["production"])
    finally:
        manager.unregister(broken)
        manager.unregister(listener)
    assert [(e["kind"], e["name"]) for e in heard] == [
        ("log", "clf"),
        ("link", "Image Classifier"),
        ("alias", "Image Classifier"),
    ]
    assert heard[-1]["registry"] == reg.store.url
    assert heard[-1]["alias"] == "production"
    assert "listener of plugin" in caplog.text
    assert reg.get("Image Classifier:production").number == 0


# -- runs and lineage ---------------------------------------------------------------------------
def test_runs_record_inputs_outputs_and_lineage_goes_both_ways(
    reg: registry.Registry, tmp_path: Path
) -> None:
    data = make_files(tmp_path / "data", {"images.txt": "cats and dogs"})
    with reg.run(job_type="upload") as upload:
        reg_data = upload.log("nature_100", data, type="dataset")
    with reg.run(job_type="train", config={"lr": 0.01, "epochs": 2}) as train:
        train.use("nature_100:latest")
        for i in range(2):
            folder = make_files(tmp_path / f"ck{i}", {"w.bin": f"w{i}"})
            train.log("classifier", folder, metadata={"acc": 0.5 + i / 10})
    reg.link("classifier:v1", "Image Classifier", aliases=["production"])
    with reg.run(job_type="evaluate") as evaluate:
        evaluate.use("classifier:v1")
        evaluate.log("report", {"r.txt": make_files(tmp_path / "r", {"r.txt": "ok"}) / "r.txt"})

    record = reg.run_info(train.id)
    assert record["status"] == "finished"
    assert record["ended"]
    assert record["config"] == {"lr": 0.01, "epochs": 2}
    assert record["user"] == registry.actor()
    assert record["hubcore"] == hubcore.__version__
    assert record["host"]
    assert [i["name"] for i in record["inputs"]] == ["nature_100"]
    assert [f"{o['name']}:v{o['version']}" for o in record["outputs"]] == [
        "classifier:v0",
        "classifier:v1",
    ]
    assert reg.get("classifier:v1").run == train.id
    assert reg_data.run == upload.id

    graph = reg.lineage("Image Classifier:production")
    assert graph.root == "model:Image Classifier:v0"
    up = graph.upstream()
    assert {"artifact:classifier:v1", f"run:{train.id}", "artifact:nature_100:v0"} <= up
    assert f"run:{upload.id}" in up
    down = reg.lineage("nature_100:v0").downstream()
    assert {f"run:{train.id}", "artifact:classifier:v1", "model:Image Classifier:v0"} <= down
    assert "artifact:report:v0" in down
    assert "artifact:report:v0" not in reg.lineage("nature_100:v0", depth=1).downstream()

    text = cli("lineage", "Image Classifier:production", "--registry", str(reg)).output
    assert text.splitlines()[0].startswith("Image Classifier:v0 [registered model")
    assert "links classifier:v1" in text
    assert "used nature_100:v0 [dataset" in text
    mermaid = cli("lineage", "classifier:v1", "--format", "mermaid", "--registry", str(reg))
    assert mermaid.output.startswith("flowchart LR\n")
    assert '["nature_100:v0"]' in mermaid.output
    assert "-->|input|" in mermaid.output
    dot = cli("lineage", "classifier:v1", "--format", "dot", "--registry", str(reg)).output
    assert dot.startswith("digraph lineage {")
    assert '"artifact:classifier:v1"' in dot
    loaded = json.loads(cli("lineage", "classifier:v1", "--json", "--registry", str(reg)).output)
    assert loaded["root"] == "artifact:classifier:v1"


def test_a_run_that_raises_is_marked_failed(reg: registry.Registry) -> None:
    with pytest.raises(ValueError, match="diverged"), reg.run(job_type="train") as run:
        raise ValueError("loss diverged")
    record = reg.run_info(run.id)
    assert record["status"] == "failed"
    assert "loss diverged" in record["error"]


KILLED = """
import sys, time, hubcore.registry as r
reg = r.open(sys.argv[1])
with reg.run(job_type="train", heartbeat=0.2) as run:
    print(run.id, flush=True)
    time.sleep(600)
"""


def test_a_killed_run_is_found_stale_and_marked_failed_on_the_next_read(
    reg: registry.Registry,
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(reg)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    time.sleep(0.6)  # a few heartbeats
    assert reg.run_info(run_id)["status"] == "running"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    deadline = time.time() + 30
    while reg.run_info(run_id)["status"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    record = reg.run_info(run_id)
    assert record["status"] == "failed"
    assert "stale" in record["error"]
    listed = cli("runs", "--registry", str(reg)).output
    assert f"{run_id}  train  failed" in listed


# -- cards ------------------------------------------------------------------------------------
CARD = """---
title: Image Classifier
summary: Tells cats from dogs.
image: classifier.png
author: Vision team
tags: [vision]
github-link: https://github.com/acme/classifier
accelerator: cuda-optional
---
A small convolutional network trained on nature_100.
"""


def test_card_is_written_then_completed_with_versions_metadata_lineage_and_loading(
    reg: registry.Registry, tmp_path: Path
) -> None:
    checkpoints(reg, tmp_path, 2)
    reg.link("clf:v1", "Image Classifier", aliases=["staging"])
    reg.alias("Image Classifier:staging", "production")
    card_file = tmp_path / "card.md"
    card_file.write_text(CARD)
    result = cli("card", "Image Classifier", "--set", str(card_file), "--registry", str(reg))
    assert result.exit_code == 0, result.output
    card = result.output
    assert card.startswith('---\nlayout: "hub_detail"\n')
    assert 'summary: "Tells cats from dogs."' in card
    assert 'tags: ["vision"]' in card
    assert "A small convolutional network" in card
    assert "| v0 | `latest`, `production`, `staging` | clf:v1 |" in card
    assert "| acc | 0.1 |" in card
    assert "hubcore.load('registry:Image Classifier:production')" in card
    assert cli("card", "Image Classifier", "--registry", str(reg)).output == card
    version_card = reg.card("clf:v1")
    assert 'title: "clf:v1"' in version_card
    assert "| acc | 0.1 |" in version_card
    # the catalog site reads the same front matter
    pages = pytest.importorskip("hubcore.site.pages")
    page = tmp_path / "acme_classifier_card.md"
    page.write_text(card)
    parsed = pages.read_page(page)
    assert parsed.text("title") == "Image Classifier"
    assert parsed.tags == ("vision",)
    assert parsed.text("github-link") == "https://github.com/acme/classifier"


def test_card_of_a_hub_repository_shows_hubcore_and_torch_hub(
    reg: registry.Registry, tmp_path: Path
) -> None:
    hub = make_files(
        tmp_path / "hub",
        {"hubconf.py": "import torch\n\ndef resnet(pretrained=False):\n    return None\n"},
    )
    reg.log("resnet-repo", hub, type="code", aliases=["production"])
    card = reg.card("resnet-repo")
    assert "hubcore.load('registry:resnet-repo:production', 'resnet')" in card
    assert "torch.hub.load(str(folder), 'resnet', source='local')" in card


def test_a_card_with_broken_front_matter_is_refused(reg: registry.Registry, tmp_path: Path) -> None:
    checkpoints(reg, tmp_path, 1)
    pytest.importorskip("yaml")
    with pytest.raises(registry.RegistryError, match="front matter"):
        reg.set_card("clf", "---\ntitle: [unclosed\n---\nbody\n")
