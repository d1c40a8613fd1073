"""Two workers on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG per process): the same model
quality as one process, and a worker killed mid-epoch and restarted lets the job finish."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.support.tiny import SYNTHETIC_CONFIG
from tests.support.workers import small_sets, start_worker, train_args, worker_env
from training.fit import launch

pytestmark = pytest.mark.slow

# Epochs of the one-process vs two-worker comparison. At 3 the two workers scored 1-6% worse in
# every paired run (CI: +5.5%, over the 5% allowed): a model still far from converged follows
# the order of its batches. At 8 (1,200 listings, 2026-12-02): +1.4%, -1.3%, +1.2% in three
# pairs, about 25 s longer per pair.
COMPARED_EPOCHS = 8


def _weights(log: str) -> str:
    return re.search(r"event=replica_start task=\S+ weights=(\w+)", log).group(1)


def test_two_workers_reading_shards_match_one_process_rmsle(small_dataset, tmp_path):
    from training.config import load
    from training.data.shards import write_shards
    from training.pipeline import train_and_export

    two, one = tmp_path / "two", tmp_path / "one"
    sets = small_sets(small_dataset, two / "models", "two", epochs=COMPARED_EPOCHS)
    cfg = load(SYNTHETIC_CONFIG, sets)
    manifest = write_shards(cfg, 4, two / "shards")  # 2 train files per worker (AutoShardPolicy.FILE)
    args = train_args(sets + [f"data.shards={str(manifest)!r}"], "--run-dir", str(two / "runs" / "job"))
    logs = two / "logs"
    started = time.time()
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "launch",
            "--workers",
            "2",
            "--max-restarts",
            "0",
            "--log-dir",
            str(logs),
            "--",
            *args,
        ],
        cwd=two,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    w0, w1 = ((logs / f"worker-{i}.log").read_text() for i in range(2))
    assert launched.returncode == 0, launched.stderr + w0[-3000:] + w1[-3000:]
    assert "event=strategy kind=multi-worker task=worker-1 workers=2 replicas=2 chief=False" in w1
    assert _weights(w0) == _weights(w1)  # same preprocessing and wide solution on both workers
    assert "event=worker_done task=worker-1" in w1 and "event=exported" not in w1
    assert [p.name for p in (two / "models" / "two").iterdir()] == ["1"]  # only the chief exported
    card = json.loads((two / "models" / "two" / "1" / "model_card.json").read_text())
    assert card["training"]["epochs"] == COMPARED_EPOCHS
    two_rmsle = card["metrics"]["test"]["rmsle"]

    one.mkdir()
    cwd = os.getcwd()
    os.chdir(one)
    try:  # the one-process run: same recipe, global batch and seed, read from the table
        result = train_and_export(
            load(SYNTHETIC_CONFIG, small_sets(small_dataset, one / "models", "one", epochs=COMPARED_EPOCHS))
        )
    finally:
        os.chdir(cwd)
    one_rmsle = result["metrics"]["rmsle"]
    print(f"test RMSLE: one process {one_rmsle:.4f}, two workers {two_rmsle:.4f} ({time.time() - started:.0f} s)")
    assert abs(two_rmsle - one_rmsle) <= 0.05 * one_rmsle


def test_worker_killed_mid_epoch_and_restarted_lets_the_job_finish(small_dataset, tmp_path):
    run_dir = tmp_path / "runs" / "job"
    epochs = 3  # killed in epoch 2: epoch 3 is always left when the restarted job resumes
    sets = small_sets(small_dataset, tmp_path / "models", "killed", metadata_only=True, epochs=epochs)
    args = train_args(sets, "--run-dir", str(run_dir))
    configs = launch.local_tf_configs(2)
    incarnations = [0, 0]

    def start(i: int) -> subprocess.Popen:
        incarnations[i] += 1
        return start_worker(configs[i], args, tmp_path, tmp_path / f"worker-{i}-{incarnations[i]}.log", tmpdir=scratch)

    scratch = tmp_path / "tmp"  # the workers' temporary folders: none may be left behind
    scratch.mkdir()

    procs = [start(0), start(1)]
    backup = run_dir / "full" / "backup" / "training_metadata.json"
    deadline = time.time() + 600
    while not (backup.exists() and json.loads(backup.read_text())["epoch"] >= 1):
        assert all(p.poll() is None for p in procs), "a worker stopped before the first backup"
        assert time.time() < deadline, "no backup within 600 s"
        time.sleep(0.2)
    time.sleep(0.5)  # into epoch 2
    assert procs[1].poll() is None
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    procs[1] = start(1)  # the cluster manager restarts the dead worker ...
    while any(p.poll() is None for p in procs) or any(p.returncode for p in procs):
        for i, p in enumerate(procs):  # ... and any worker whose collective ops failed when its peer died
            if p.poll() is not None and p.returncode != 0:
                assert incarnations[i] < 3, (tmp_path / f"worker-{i}-{incarnations[i]}.log").read_text()[-3000:]
                procs[i] = start(i)
        assert time.time() < deadline, "the job did not finish within 600 s"
        time.sleep(0.5)
    last = {i: (tmp_path / f"worker-{i}-{incarnations[i]}.log").read_text() for i in (0, 1)}
    assert incarnations[1] == 2
    for log in last.values():  # the restarted workers continued from the backed-up epoch
        assert f"epoch=1/{epochs}" not in log and f"epoch={epochs}/{epochs}" in log
    history = pd.read_csv(run_dir / "full" / "history.csv")
    assert sorted(history["epoch"].unique()) == list(range(epochs))
    card = json.loads((tmp_path / "models" / "killed" / "1" / "model_card.json").read_text())
    assert card["training"]["epochs"] == epochs and card["metrics"]["test"]["rmsle"] > 0
    # the killed worker's scratch folder was taken over by its restart and removed at the end
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("price-scratch-")]
