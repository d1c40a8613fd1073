"""The tiny data set and model of the test tiers: a few hundred generated listings and the tiny
recipe of harness/models.py (32 px photos, two epochs, batch 32), trained by the real pipeline.

The session fixtures built from these live in tests/conftest.py (``tiny_dataset``,
``tiny_trained``, ``tiny_model_dir``); tests import the helpers from here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from harness.models import ROOT, SYNTHETIC_CONFIG, tiny_sets

__all__ = ["ROOT", "SYNTHETIC_CONFIG", "generate_tiny", "tiny_config", "train_in"]


def generate_tiny(out: Path, rows: int = 240, seed: int = 7) -> Path:
    """items.csv + images/ of ``rows`` generated listings under ``out``; returns the table's path."""
    from training.data.synthetic import generate

    return generate(rows, seed=seed, out=out, workers=1, quiet=True)


def tiny_config(table: Path, models_dir: Path, **train: Any):
    """The default config pointed at a tiny table, with the tiny recipe (``train`` overrides it)."""
    from training.config import load

    return load(SYNTHETIC_CONFIG, tiny_sets(table, models_dir, "tiny", **{"epochs": 2, "batch_size": 32, **train}))


def train_in(work: Path, cfg) -> dict[str, Any]:
    """``train_and_export(cfg)`` run from ``work``, so that its runs/ folder goes there."""
    from training.pipeline import train_and_export

    with contextlib.chdir(work):
        return train_and_export(cfg)
