"""Helpers of the multi-worker tests: a small recipe, worker commands and their environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.models import tiny_sets, train_args
from harness.server import child_env

__all__ = ["BATCH", "EPOCHS", "small_sets", "start_worker", "train_args", "worker_env"]

EPOCHS = 2
BATCH = 32


def small_sets(table: Path, models: Path, name: str, metadata_only: bool = False, **train: object) -> list[str]:
    """`--set` overrides for a small, fast recipe (the same global batch and seed for every run).

    `metadata_only` drops the text and photo columns: a model that traces in a third of the time,
    for tests about the mechanics rather than the model.
    """
    sets = tiny_sets(table, models, name, **{"epochs": EPOCHS, "batch_size": BATCH, "patience": 10, **train})
    return [*sets, "data.text=[]", "data.image=''"] if metadata_only else sets


def worker_env() -> dict[str, str]:
    return child_env({"TF_CPP_MIN_LOG_LEVEL": "3"})


def start_worker(tf_config: str, args: list[str], cwd: Path, log: Path, tmpdir: Path | None = None) -> subprocess.Popen:
    """One `python -m training train --strategy multi-worker` process with its TF_CONFIG."""
    out = open(log, "wb")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "training", "train", *args, "--strategy", "multi-worker"]
    env = {**worker_env(), "TF_CONFIG": tf_config, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
