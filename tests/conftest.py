"""Shared fixtures: a tiny generated data set and a tiny model trained and exported from it.

Generated once per session (about 200 rows, 32x32 model images), so the integration, service and
behaviour tiers all exercise the real pipeline on raw inputs without shipping fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIG = ROOT / "training" / "configs" / "synthetic.toml"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """items.csv + images/ of 240 generated listings; returns the table's path."""
    from training.data.synthetic import generate

    return generate(240, seed=7, out=tmp_path_factory.mktemp("data") / "tiny", workers=1, quiet=True)


def tiny_config(table: Path, models_dir: Path, **train):
    """The default config pointed at a tiny table, with a fast recipe."""
    from training.config import load

    overrides = [f"data.table={str(table)!r}", f"models_dir={str(models_dir)!r}", "name='tiny'",
                 "model.image_size=32", "model.image_filters=[8, 16]", "model.text_max_tokens=2000",
                 "train.epochs=2", "train.batch_size=32", "train.ablations='none'", "train.baselines=false"]
    overrides += [f"train.{k}={v!r}" for k, v in train.items()]
    return load(SYNTHETIC_CONFIG, overrides)


@pytest.fixture(scope="session")
def tiny_trained(tiny_dataset, tmp_path_factory):
    """Train and export the tiny model once; returns the pipeline's result dict and its config."""
    from training.pipeline import train_and_export

    work = tmp_path_factory.mktemp("train")
    cwd = os.getcwd()
    os.chdir(work)  # runs/ goes under the temporary folder
    try:
        cfg = tiny_config(tiny_dataset, work / "models")
        result = train_and_export(cfg)
    finally:
        os.chdir(cwd)
    return {"result": result, "config": cfg, "work": work}


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_trained) -> Path:
    """models/tiny: a folder holding version 1 of the tiny model (SavedModel + model_card.json)."""
    return Path(tiny_trained["result"]["path"]).parent
