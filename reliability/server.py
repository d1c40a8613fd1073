"""The service as a real uvicorn subprocess on 127.0.0.1 (``python -m service``), for the fuzz, the
soak and the tests that need real sockets and timeouts; plus a tiny model when none is given."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_version(model_dir: Path) -> bool:
    """True when ``model_dir`` holds at least one integer version folder with a model card."""
    return model_dir.is_dir() and any(
        p.name.isdigit() and (p / "model_card.json").is_file() for p in model_dir.iterdir()
    )


class ServiceProcess:
    """``python -m service`` on a free loopback port; ``with`` starts it, waits for /readyz and
    stops it (SIGTERM, then SIGKILL after 20 s). Its output goes to ``log_path``."""

    def __init__(self, model_dir: Path, log_path: Path, ready_timeout: float = 180.0, **env: str | int | float) -> None:
        self.model_dir = Path(model_dir)
        self.log_path = Path(log_path)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "MODEL_DIR": str(self.model_dir),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            **{k.upper(): str(v) for k, v in env.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the service was not ready within {self.ready_timeout:.0f} s: {self.log_tail()}")

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def rss_bytes(self) -> int:
        """Resident memory of the service process."""
        import psutil

        return psutil.Process(self.pid).memory_info().rss

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def train_tiny_model(work: Path | None = None, rows: int = 300) -> Path:
    """Generate a small synthetic table and train a tiny model on it with the training CLI;
    returns its ``models/tiny`` folder (about a minute on 2 cores)."""
    work = Path(work or tempfile.mkdtemp(prefix="reliability-model-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    data = work / "data"
    if not (data / "items.csv").exists():
        subprocess.run(
            [sys.executable, "-m", "training.data.synthetic", "--n", str(rows), "--seed", "1", "--out", str(data)],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    sets = [
        f"data.table={str(data / 'items.csv')!r}",
        f"models_dir={str(work / 'models')!r}",
        "name='tiny'",
        "model.image_size=32",
        "model.image_filters=[8, 16]",
        "model.text_max_tokens=2000",
        "train.epochs=2",
        "train.ablations='none'",
        "train.baselines=false",
    ]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--config",
            str(ROOT / "training/configs/synthetic.toml"),
            *[a for s in sets for a in ("--set", s)],
        ],
        cwd=work,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return work / "models" / "tiny"


def model_dir_or_tiny(model_dir: Path) -> Path:
    """``model_dir`` when it holds a version, else a tiny model trained for the occasion."""
    if has_version(model_dir):
        return model_dir
    print(f"{model_dir} holds no model version: training a tiny one with the training CLI...", flush=True)
    return train_tiny_model()
