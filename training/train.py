"""Fitting one model: seed, optimiser and schedule, early stopping, a checkpoint per epoch, resume.

A run lives in `runs/<name>/<run-id>/`: `checkpoints/` (weights after every epoch), `backup/`
(Keras BackupAndRestore state, which `--resume` continues from), `tensorboard/`, `history.csv`
and `history.json`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from training.config import Config
from training.data import make_dataset
from training.model import MODALITIES, Preprocessing, build_model
from training.wide import init_wide_from_ridge

log = logging.getLogger(__name__)


class EpochLog(keras.callbacks.Callback):
    """One quiet key=value line per epoch, so long runs show progress without a progress bar."""

    def __init__(self, label: str, epochs: int):
        super().__init__()
        self.label, self.epochs = label, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        figures = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k in ("loss", "rmsle", "val_rmsle"))
        log.info("event=epoch model=%s epoch=%d/%d %s seconds=%.1f", self.label, epoch + 1, self.epochs,
                 figures, time.time() - self.t0)


def compile_model(cfg: Config, model: keras.Model, steps_per_epoch: int) -> None:
    t = cfg.train
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, t.epochs * steps_per_epoch - steps_per_epoch), warmup_target=t.learning_rate,
        warmup_steps=steps_per_epoch, alpha=0.02)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=t.weight_decay, clipnorm=1.0),
                  loss="mse", metrics=[keras.metrics.RootMeanSquaredError(name="rmsle")])


def fit(cfg: Config, train: pd.DataFrame, valid: pd.DataFrame, pre: Preprocessing, run_dir: Path,
        modalities: tuple[str, ...] = MODALITIES, label: str = "full") -> tuple[keras.Model, dict]:
    """Train one model on the chosen modalities; resumes from `run_dir/backup` if it is there.

    Decoded photos are cached in `run_dir.parent/cache/` (shared by the models of one run); the
    caller removes that folder when the run is over.
    """
    t = cfg.train
    keras.utils.set_random_seed(t.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg, pre, modalities)
    if cfg.model.wide_init == "ridge":
        wide = init_wide_from_ridge(model, cfg, train, valid)
        if wide is not None:  # the deep branches learn the out-of-fold residual (training/wide.py)
            train = train.assign(**{cfg.data.target: train[cfg.data.target] * np.exp(wide["train_shift"])})
    steps = math.ceil(len(train) / t.batch_size)
    compile_model(cfg, model, steps)
    cols = list(model.input)
    cache = run_dir.parent / "cache"
    if cfg.data.image and cfg.data.image in cols:
        cache.mkdir(exist_ok=True)
    args = {"columns": cols}
    train_ds = make_dataset(cfg, train, training=True, **args, cache=_cache(cfg, cols, cache, "train"))
    valid_ds = make_dataset(cfg, valid, training=False, **args, cache=_cache(cfg, cols, cache, "valid"))
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    callbacks = [  # the history row first: an epoch that is backed up is always in history.csv
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoints" / "epoch-{epoch:03d}.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping("val_rmsle", patience=t.patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False, profile_batch=0),
        EpochLog(label, t.epochs),
    ]
    started = time.time()
    hist = model.fit(train_ds, validation_data=valid_ds, epochs=t.epochs, callbacks=callbacks, verbose=0)
    history = _full_history(run_dir, hist.history)
    history["seconds"] = time.time() - started
    history["best_epoch"] = int(np.argmin(history["val_rmsle"])) + 1 if history.get("val_rmsle") else 0
    tmp = run_dir / "history.json.tmp"
    tmp.write_text(json.dumps(history))
    tmp.replace(run_dir / "history.json")
    return model, history


def _cache(cfg: Config, cols: list[str], folder: Path, split: str) -> str | None:
    """A per-process cache file of decoded photos (none for models without the photo)."""
    if not cfg.data.image or cfg.data.image not in cols:
        return None
    return str(folder / f"{split}-{os.getpid()}")


def _full_history(run_dir: Path, fallback: dict) -> dict:
    """The whole run's history, including epochs from before a resume (kept in history.csv)."""
    path = run_dir / "history.csv"
    try:
        frame = pd.read_csv(path).drop_duplicates("epoch", keep="last")
        return {k: frame[k].astype(float).tolist() for k in frame.columns if k != "epoch"}
    except Exception:  # noqa: BLE001 - no csv: use what fit returned
        return {k: [float(v) for v in vs] for k, vs in fallback.items()}
