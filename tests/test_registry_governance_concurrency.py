"""Eight processes link versions to one registered model and move its alias at once: the
state stays consistent and the history complete, on a folder and on S3 (moto)."""

from __future__ import annotations

import itertools
from pathlib import Path

import hubcore.registry as registry

from .test_registry import make_files
from .test_registry import reg_url as reg_url
from .test_registry_concurrency import spawn

LINKER = """
import sys, hubcore.registry as r
reg = r.open(sys.argv[1])
v = reg.link(f"clf:v{sys.argv[2]}", "Image Classifier")
reg.alias(f"Image Classifier:v{v.number}", "production")
print(v.number)
"""


def test_eight_processes_link_and_move_aliases_consistently(
    reg_url: str,
    tmp_path: Path,
) -> None:
    reg = registry.open(reg_url)
    for i in range(8):
        reg.log("clf", make_files(tmp_path / f"ck{i}", {"w.bin": f"weights {i}"}))
    children = [spawn(LINKER, reg_url, str(i)) for i in range(8)]
    numbers = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        numbers.append(int(out))
    assert sorted(numbers) == list(range(8))  # eight distinct model versions
    versions = reg.versions("Image Classifier", limit=0)
    assert sorted(v.link[1] for v in versions if v.link) == list(range(8))
    for v in versions:  # each shares its artifact version's digest
        assert v.digest == reg.get(f"clf:v{v.link[1] if v.link else -1}").digest
    production = reg.get("Image Classifier:production")
    assert production.number in numbers

    history = reg.history("Image Classifier")
    links = [e for e in history if e["kind"] == "link"]
    moves = sorted((e for e in history if e["kind"] == "alias"), key=lambda e: e["seq"])
    assert sorted(e["after"]["version"] for e in links) == list(range(8))
    assert len(moves) == 8
    assert [e["seq"] for e in moves] == list(range(8))
    for earlier, later in itertools.pairwise(moves):  # one chain of moves, none lost
        assert later["from"] == earlier["to"]
    assert moves[-1]["to"] == production.number
    assert len({e["id"] for e in history}) == len(history) == 16
    linked = [e for e in reg.history("clf") if e["kind"] == "linked"]
    assert len(linked) == 8
