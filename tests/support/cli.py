"""Run a command-line entry point as a newcomer would: no TensorFlow or log-level variables set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Variables that would hide what a user's terminal shows; a newcomer has none of them set.
HIDING = ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "LOG_LEVEL")


def newcomer_env(**extra: str) -> dict[str, str]:
    """os.environ without the variables that silence or raise log output, the repo on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in HIDING}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run_module(module: str, *args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m module args...` in a newcomer's environment, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_line(stderr: str) -> str:
    """The one line a failing command printed on stderr; fails the test if it printed more or none."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}:\n{stderr[-3000:]}"
    return lines[0]
