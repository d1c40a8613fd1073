"""Helpers shared by the benchmark's parts: progress lines, percentiles, request payloads and a
uvicorn server run in its own process.

Nothing here imports TensorFlow, so the orchestrator and the load generator stay light.
"""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_T0 = time.monotonic()


def say(message: str) -> None:
    """One progress line on stderr, with the time since the benchmark started."""
    elapsed = time.monotonic() - _T0
    print(f"[bench {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {message}", file=sys.stderr, flush=True)


def percentiles(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max of durations given in seconds, in milliseconds (nearest rank)."""
    if not values_s:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "mean": math.nan, "max": math.nan}
    ordered = sorted(values_s)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000.0

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "mean": sum(ordered) / len(ordered) * 1000.0,
        "max": ordered[-1] * 1000.0,
    }


def newest_version(model_dir: Path) -> Path | None:
    """The highest plain-integer version folder under model_dir (as the service picks it)."""
    if not model_dir.is_dir():
        return None
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def make_payloads(version_dir: Path, n: int, out: Path, seed: int = 12345) -> Path:
    """Write ``n`` /v1/predict JSON bodies (fields from the model card, photo as base64) to
    ``out/payloads.json``, built from freshly generated synthetic listings."""
    from training.data.synthetic import generate

    card = json.loads((version_dir / "model_card.json").read_text())
    table = generate(n, seed=seed, out=out / "items", workers=1, quiet=True)
    import csv

    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    bodies = []
    for row in rows:
        body: dict[str, Any] = {}
        for spec in card["inputs"]:
            name, role = spec["name"], spec["role"]
            if name not in row:
                raise SystemExit(
                    f"error: the model's input {name!r} is not a column of the synthetic data set; "
                    "the benchmark needs a model trained on it (make train)"
                )
            if role == "image":
                body[name] = base64.b64encode((table.parent / row[name]).read_bytes()).decode()
            elif role == "numeric":
                body[name] = float(row[name])
            else:
                body[name] = row[name]
        bodies.append(body)
    path = out / "payloads.json"
    path.write_text(json.dumps({"card": {"inputs": card["inputs"]}, "bodies": bodies}))
    return path


def load_payloads(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(card inputs, request bodies) from make_payloads' file."""
    data = json.loads(path.read_text())
    return data["card"]["inputs"], data["bodies"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: the repo importable, TensorFlow quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra or {})
    return env


def run_json(
    args: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Run ``python -m ...`` in a child process; its last stdout line is a JSON result.
    Its stderr (progress) passes through."""
    proc = subprocess.run(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, timeout=timeout, env=child_env(env), cwd=cwd or ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited with {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


class Server:
    """An ASGI app served by uvicorn in its own process on a free 127.0.0.1 port.

    ``with Server("service.main:app", env, log) as server:`` runs ``uvicorn APP``; with
    ``module="service"`` it runs ``python -m service`` instead (how `make serve` and the
    container start it), given HOST and PORT. Entering waits until /readyz answers 200; leaving
    stops it (SIGTERM, then SIGKILL).
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        log_path: Path,
        ready_timeout_s: float = 240.0,
        module: str | None = None,
    ):
        self.app, self.env, self.log_path, self.ready_timeout_s = app, dict(env), log_path, ready_timeout_s
        self.module = module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self._log = log
        if self.module:
            args = [sys.executable, "-m", self.module]
        else:
            args = [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
        env = child_env({**self.env, "HOST": "127.0.0.1", "PORT": str(self.port)})
        t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.started_s = time.monotonic() - t0
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"{self.module or self.app} exited with {self.proc.returncode} before it was ready:\n{tail}"
                )
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"{self.module or self.app} was not ready after {self.ready_timeout_s:.0f} s (log: {self.log_path})"
        )

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
