"""The service as a real uvicorn subprocess on 127.0.0.1 (``python -m service``, see
harness/server.py), for the fuzz, the soak and the tests that need real sockets and timeouts;
plus a tiny model when none is given."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common.files import versions
from harness import server
from harness.models import tiny_sets, train_args
from harness.server import child_env, settings_env

ROOT = server.ROOT


def has_version(model_dir: Path) -> bool:
    """True when ``model_dir`` holds at least one integer version folder with a model card."""
    return any((model_dir / str(v) / "model_card.json").is_file() for v in versions(model_dir))


class ServiceProcess(server.ServiceProcess):
    """``python -m service`` serving ``model_dir`` on a free loopback port; ``with`` starts it,
    waits for /readyz and stops it (SIGTERM, then SIGKILL after 20 s). Its output goes to
    ``log_path``; ``settings`` (``RELOAD_INTERVAL_S=0``...) are set in its environment, on top
    of quiet logs (LOG_LEVEL=WARNING, no TensorFlow start-up lines)."""

    def __init__(self, model_dir: Path, log_path: Path, ready_timeout: float = 180.0, **settings: object) -> None:
        env = {"TF_CPP_MIN_LOG_LEVEL": "3", "LOG_LEVEL": "WARNING", **settings_env(model_dir=model_dir, **settings)}
        super().__init__(log_path, env, ready_timeout=ready_timeout)
        self.model_dir = Path(model_dir)


def train_tiny_model(work: Path | None = None, rows: int = 300) -> Path:
    """Generate a small synthetic table and train a tiny model on it with the training CLI;
    returns its ``models/tiny`` folder (about a minute on 2 cores)."""
    work = Path(work or tempfile.mkdtemp(prefix="reliability-model-"))
    env = child_env({"TF_CPP_MIN_LOG_LEVEL": "3"})
    data = work / "data"
    if not (data / "items.csv").exists():
        generate = [
            sys.executable,
            "-m",
            "training.data.synthetic",
            "--n",
            str(rows),
            "--seed",
            "1",
            "--out",
            str(data),
        ]
        subprocess.run(generate, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    train = [sys.executable, "-m", "training", "train", *train_args(tiny_sets(data / "items.csv", work / "models"))]
    subprocess.run(train, cwd=work, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return work / "models" / "tiny"


def model_dir_or_tiny(model_dir: Path) -> Path:
    """``model_dir`` when it holds a version, else a tiny model trained for the occasion."""
    if has_version(model_dir):
        return model_dir
    print(f"{model_dir} holds no model version: training a tiny one with the training CLI...", flush=True)
    return train_tiny_model()
