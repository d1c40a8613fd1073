"""A training run killed with SIGKILL mid-run continues with --resume and exports a valid model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.models import tiny_sets, train_args
from harness.server import child_env


def _cmd(table: Path, models: Path, *extra: str) -> list[str]:
    sets = tiny_sets(table, models, "resumed", epochs=4, batch_size=16, patience=10)
    return [sys.executable, "-m", "training", "train", *train_args(sets, *extra)]


@pytest.mark.slow  # trains twice, in child processes (no fixture says so)
def test_killed_run_resumes_from_its_last_epoch_and_exports(tiny_dataset, tmp_path):
    env = child_env({"TF_CPP_MIN_LOG_LEVEL": "3"})
    models = tmp_path / "models"
    first = subprocess.Popen(
        _cmd(tiny_dataset, models), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 900  # generous: CI machines are shared and TensorFlow starts slowly
    while not list(tmp_path.glob("runs/resumed/*/full/checkpoints/epoch-002.weights.h5")):
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline, "no checkpoint within 900 s"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not models.exists() or not list(models.glob("resumed/[0-9]*")), "a killed run must not export"
    second = subprocess.run(
        _cmd(tiny_dataset, models, "--resume"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    assert "event=resume run=" in second.stderr
    assert "epoch=1/4" not in second.stderr and "epoch=2/4" not in second.stderr  # continued, not restarted
    assert "epoch=4/4" in second.stderr
    version = models / "resumed" / "1"
    card = json.loads((version / "model_card.json").read_text())
    assert card["training"]["epochs"] == 4
    assert (version / "saved_model.pb").exists()
