"""The W&B registry tutorial's flow, end to end, on a local folder and on S3 (moto): a dataset
logged from a run, a second run that uses it and logs checkpoints, the best one linked to a
registered model as ``staging``, promoted to ``production``, loaded in a fresh process; its
lineage reaches the dataset and its card shows both aliases and the metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

import hubcore
from hubcore import registry
from hubcore.cli import main

from .test_packages import tiny, trained  # noqa: F401  (tiny is a fixture)
from .test_registry import make_files
from .test_registry import reg_url as reg_url
from .test_registry_packages import load_in_fresh_process


def test_wandb_tutorial_flow_end_to_end(
    reg_url: str,
    tiny,  # noqa: F811
    tmp_path: Path,
) -> None:
    tiny_models, _ = tiny
    reg = registry.open(reg_url)

    # 1. a run logs the dataset
    data = make_files(tmp_path / "nature_100", {"labels.csv": "cat\ndog\n", "images.txt": "..."})
    with reg.run(job_type="upload-data", config={"source": "nature_100"}) as upload:
        upload.log("nature_100", data, type="dataset", aliases=["raw"])

    # 2. a training run uses it and logs a checkpoint per epoch
    expected: dict[int, str] = {}
    with reg.run(job_type="train", config={"epochs": 3, "lr": 0.01}) as train:
        train.use("nature_100:latest")
        for epoch in range(3):
            model = trained(tiny_models, seed=epoch)
            folder = hubcore.save_pretrained(
                model, tmp_path / f"epoch{epoch}", config=tiny_models.TinyConfig()
            )
            accuracy = [0.71, 0.93, 0.88][epoch]
            version = train.log("classifier", folder, metadata={"accuracy": accuracy})
            expected[version.number] = model(np.arange(4, dtype=np.float32)).tobytes().hex()

    # 3. the best checkpoint is linked to the registered model as staging, then promoted
    best = max(reg.versions("classifier"), key=lambda v: v.metadata["accuracy"])
    linked = reg.link(
        f"classifier:v{best.number}",
        "Image Classifier",
        aliases=["staging"],
        description="Tells cats from dogs.",
    )
    reg.alias("Image Classifier:staging", "production")

    # 4. a fresh process with a fresh cache loads the production model
    src = Path(tiny_models.__file__).parent
    output, _ = load_in_fresh_process(
        "registry:Image Classifier:production", tmp_path / "fresh-home", reg_url, src
    )
    assert output == expected[best.number]

    # 5. lineage from the loaded version reaches the dataset
    loaded = reg.get("Image Classifier:production")
    assert (loaded.number, loaded.link) == (linked.number, ("classifier", best.number))
    graph = reg.lineage("Image Classifier:production")
    assert {f"run:{train.id}", "artifact:nature_100:v0", f"run:{upload.id}"} <= graph.upstream()
    text = CliRunner().invoke(
        main, ["registry", "lineage", "Image Classifier:production", "--registry", reg_url]
    )
    assert "used nature_100:v0 [dataset" in text.output

    # 6. the card shows both aliases and the metrics
    card = reg.card("Image Classifier")
    assert f"| v{linked.number} | `latest`, `production`, `staging` |" in card
    assert "| accuracy | 0.93 |" in card
    assert "```mermaid" in card
    assert "nature_100:v0" in card
