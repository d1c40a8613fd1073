"""Memory: peak RSS of a whole training run (`python -m training train`) on N and on 4N items.

Each run is a child process on a generated synthetic data set of 4N listings (the N run keeps
its first N rows with ``train.max_rows``), with one epoch and small settings; its peak RSS is
the kernel's own figure for that child (``os.wait4`` -> ``ru_maxrss``), so nothing is sampled
and no peak is missed. The runs go one after the other: training is CPU-bound, so side by side
on 2 cores they would only slow each other down. Runs from the orchestrator (no TensorFlow here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, say
from harness.models import tiny_recipe, tiny_sets, train_args

SMALL = tiny_recipe(epochs=1, batch_size=64)


def generate(n: int, out: Path) -> Path:
    """A synthetic data set of n listings under out (in a child process, like the runs)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training.data.synthetic",
            "--n",
            str(n),
            "--seed",
            "3",
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        check=True,
        env=child_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out / "items.csv"


def _start(table: Path, rows: int, work: Path) -> tuple[subprocess.Popen[bytes], Path, float]:
    work.mkdir(parents=True, exist_ok=True)
    sets = tiny_sets(table, work / "models", "bench", epochs=1, batch_size=64, max_rows=rows)
    args = [sys.executable, "-m", "training", "train", *train_args(sets)]
    log_path = work / "train.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=child_env())
    return proc, log_path, time.monotonic()


def train_peak_rss(table: Path, rows: int, work: Path, timeout_s: float) -> dict[str, Any]:
    """One training run in a child process: its peak RSS (MiB, from wait4: the child's own
    figure), wall time and CPU time."""
    proc, log_path, started = _start(table, rows, work)
    deadline = started + timeout_s
    try:
        while True:  # wait4 with WNOHANG, so a hung run cannot hang the benchmark
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"training on {rows} rows still going after {timeout_s:.0f} s")
            time.sleep(0.2)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"training on {rows} rows exited with {proc.returncode}:\n{tail}")
    return {
        "rows": rows,
        "peak_rss_mib": usage.ru_maxrss / 1024.0,  # Linux reports KiB
        "seconds": round(time.monotonic() - started, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    }


def measure(n: int, timeout_s: float = 900.0) -> dict[str, Any]:
    """Peak RSS of training runs on n and 4n items, and their ratio."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        say(f"memory: generating {4 * n} synthetic listings")
        table = generate(4 * n, Path(tmp) / "data")
        runs = []
        for rows in (n, 4 * n):
            say(f"memory: training run on {rows} items (1 epoch, small settings, in a child process)")
            runs.append(train_peak_rss(table, rows, Path(tmp) / f"run-{rows}", timeout_s))
            say(f"memory: {rows} items: peak RSS {runs[-1]['peak_rss_mib']:.0f} MiB ({runs[-1]['seconds']:.0f} s)")
    return {
        "n": n,
        "settings": SMALL,
        "runs": runs,
        "ratio_4n_n": runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"],
    }
