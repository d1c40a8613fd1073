"""Helpers for the multi-worker tests: a small data set, worker commands and their TF_CONFIG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SYNTHETIC_CONFIG

EPOCHS = 2
BATCH = 32


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """400 generated listings (more test rows than tiny_dataset, so RMSLE comparisons are steadier)."""
    from training.data.synthetic import generate

    return generate(400, seed=7, out=tmp_path_factory.mktemp("data") / "small", workers=1, quiet=True)


def small_sets(table: Path, models: Path, name: str, metadata_only: bool = False, **train) -> list[str]:
    """`--set` overrides for a small, fast recipe (the same global batch and seed for every run).

    `metadata_only` drops the text and photo columns: a model that traces in a third of the time,
    for tests about the mechanics rather than the model.
    """
    sets = {"data.table": str(table), "models_dir": str(models), "name": name, "model.image_size": 32,
            "model.image_filters": [8, 16], "model.text_max_tokens": 2000, "train.epochs": EPOCHS,
            "train.batch_size": BATCH, "train.ablations": "none", "train.baselines": False, "train.patience": 10,
            **({"data.text": [], "data.image": ""} if metadata_only else {}),
            **{f"train.{k}": v for k, v in train.items()}}
    return [f"{k}={v!r}" if isinstance(v, str) else f"{k}={str(v).lower() if isinstance(v, bool) else v}"
            for k, v in sets.items()]


def train_args(sets: list[str], *extra: str) -> list[str]:
    return ["--config", str(SYNTHETIC_CONFIG), *[a for s in sets for a in ("--set", s)], *extra]


def worker_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def start_worker(tf_config: str, args: list[str], cwd: Path, log: Path, tmpdir: Path | None = None) -> subprocess.Popen:
    """One `python -m training train --strategy multi-worker` process with its TF_CONFIG."""
    out = open(log, "wb")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "training", "train", *args, "--strategy", "multi-worker"]
    env = {**worker_env(), "TF_CONFIG": tf_config, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
