"""Fitting one model: seed, optimiser and schedule, early stopping, a checkpoint per epoch, resume.

A run lives in `runs/<name>/<run-id>/`: `checkpoints/` (weights after every epoch), `backup/`
(Keras BackupAndRestore state, which `--resume` continues from), `tensorboard/`, `history.csv`
and `history.json`.

Under a distribution strategy (`training/distributed.py`) the model is built and compiled inside
the strategy's scope; `train.batch_size` is the global batch, split over the replicas, so the
recipe is the same whatever the number of workers. Only the chief writes into the run folder;
the other workers keep their own logs and checkpoints in a temporary folder, removed at the end,
and restore from the chief's backup when they are restarted.
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

from common.files import atomic_write_text
from training.config import Config
from training.data.dataset import make_dataset
from training.data.subsets import given, group_columns
from training.features.photo import frozen_features
from training.features.preprocessing import Preprocessing
from training.fit import distributed
from training.fit.partial import fit_partial
from training.fit.quirks import known_end_of_data
from training.fit.wide import fit_blend, init_wide_from_ridge
from training.model.head import build_model
from training.model.inputs import MODALITIES

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
        figures = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k in ("loss", "log_rmse", "val_log_rmse"))
        log.info(
            "event=epoch model=%s epoch=%d/%d %s seconds=%.1f",
            self.label,
            epoch + 1,
            self.epochs,
            figures,
            time.time() - self.t0,
        )


def compile_model(cfg: Config, model: keras.Model, steps_per_epoch: int) -> None:
    t = cfg.train
    if t.lr_schedule == "halving":  # no warm-up, then half the rate every epoch (like doubling the batch)
        schedule = keras.optimizers.schedules.ExponentialDecay(t.learning_rate, steps_per_epoch, 0.5, staircase=True)
    else:  # one epoch of linear warm-up, then a cosine down to 2% of the peak
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=max(1, t.epochs * steps_per_epoch - steps_per_epoch),
            warmup_target=t.learning_rate,
            warmup_steps=steps_per_epoch,
            alpha=0.02,
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=t.weight_decay, clipnorm=1.0),
        loss=log_price_mse,
        metrics=[LogPriceRMSE(name="log_rmse")],
    )


def log_price_mse(y_true, y_pred):
    """Squared error of the log price, against every column of `y_pred`.

    A model with `model.members = k` outputs k estimates while training: each member is scored on
    its own (the label is broadcast over the columns), so the members train independently.
    """
    y_true = keras.ops.cast(keras.ops.reshape(y_true, (-1, 1)), y_pred.dtype)
    return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)


class LogPriceRMSE(keras.metrics.RootMeanSquaredError):
    """RMSE of the log price (`log_rmse`: the training loss's scale, not RMSLE's log1p); the label is broadcast over the members' columns."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(keras.ops.reshape(y_true, (-1, 1)), y_pred, sample_weight)


class WorkerBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore for one process or many: every worker restores from the chief's backup,
    only the chief writes it, and it writes atomically (a restarted worker never reads half a file).

    Keras 3's own callback has every worker write the same files; the backed-up state is the same
    on every worker (the variables are mirrored), so one copy is enough.
    """

    def __init__(self, backup_dir: str, writer: bool = True):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.writer = writer

    def _save_model(self):
        if not self.writer:
            return
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"partial-{os.getpid()}.weights.h5"
        self.model.save_weights(str(tmp), overwrite=True)
        tmp.replace(self._weights_path)
        atomic_write_text(
            self._training_metadata_path, json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen})
        )


class Throughput(keras.callbacks.Callback):
    """Examples per second of each epoch's training steps (all workers together), logged by the chief."""

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples, self.rates = examples_per_epoch, []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0, self.t1 = time.time(), None

    def on_test_begin(self, logs=None):  # validation starts: the epoch's training steps are over
        self.t1 = self.t1 or time.time()

    def on_epoch_end(self, epoch, logs=None):
        seconds = (self.t1 or time.time()) - self.t0
        self.rates.append(self.examples / max(seconds, 1e-9))
        log.info(
            "event=throughput epoch=%d examples=%d train_seconds=%.1f examples_per_second=%.1f",
            epoch + 1,
            self.examples,
            seconds,
            self.rates[-1],
        )


def fit(
    cfg: Config,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    pre: Preprocessing,
    run_dir: Path,
    modalities: tuple[str, ...] = MODALITIES,
    label: str = "full",
    shards: tuple[dict, Path] | None = None,
) -> tuple[keras.Model, dict]:
    """Train one model on the chosen modalities; resumes from `run_dir/backup` if it is there.

    Decoded photos are cached in `run_dir.parent/cache/` (shared by the models of one run); the
    caller removes that folder when the run is over. With `shards` (manifest, folder) the train and
    valid rows are read from the TFRecord shards instead of the table. Under a non-default
    strategy the returned model is a plain copy (built outside the strategy) for evaluation and
    export on the chief alone.
    """
    t = cfg.train
    cl = distributed.current()
    keras.utils.set_random_seed(t.seed)
    own = run_dir if cl.is_chief else cl.scratch(label, run_dir)  # where this process writes its files
    own.mkdir(parents=True, exist_ok=True)
    with cl.strategy.scope():
        model = build_model(cfg, pre, modalities)
    shift = None
    if cfg.model.wide_init == "ridge":  # deterministic: every worker computes the same solution
        wide = init_wide_from_ridge(model, cfg, train, valid)
        if wide is not None:  # the deep branches learn the out-of-fold residual (training/wide.py)
            shift = wide["train_shift"]  # [rows, pattern]: the stream adds the pattern a row is left with
    # input dropout (ModDrop) for the full model only: an ablation is the dedicated model of its subset
    dropout = t.input_dropout if label == "full" else 0.0
    if cl.kind != "default":
        log.info("event=replica_start task=%s weights=%s", cl.label, distributed.fingerprint(model.get_weights()))
    examples = len(train) + t.input_dropout_copies * expected_copies(cfg, train, dropout, list(model.input))
    batch = batch_size(cfg, examples, len(train))
    steps = math.ceil(examples / batch)  # global batch: the same steps whatever the workers
    with cl.strategy.scope():
        compile_model(cfg, model, steps)
    cols = list(model.input)
    cache = (run_dir.parent if cl.is_chief else own) / "cache"
    if cfg.data.image and cfg.data.image in cols:
        cache.mkdir(exist_ok=True)
    multi = cl.multi_worker
    if shards is not None:
        from training.data.shards import shard_dataset

        manifest, folder = shards
        ids = dict(zip(train[cfg.data.id], shift[:, 0], strict=True)) if shift is not None else None
        train_ds = shard_dataset(
            cfg,
            manifest,
            folder,
            "train",
            True,
            cols,
            shift=ids,
            repeat=multi,
            by_file=multi,
            cache=_cache(cfg, cols, cache, "train"),
            input_dropout=dropout,
            batch_size=batch,
        )
        valid_ds = shard_dataset(cfg, manifest, folder, "valid", False, cols, cache=_cache(cfg, cols, cache, "valid"))
    else:
        args = {"columns": cols}
        share = (cl.num_workers, cl.rank) if multi else None
        train_ds = make_dataset(
            cfg,
            train,
            training=True,
            **args,
            cache=_cache(cfg, cols, cache, "train"),
            shard=share,
            repeat=multi,
            input_dropout=dropout,
            shift=shift,
            batch_size=batch,
        )
        valid_ds = make_dataset(cfg, valid, training=False, **args, cache=_cache(cfg, cols, cache, "valid"))
    (own / "checkpoints").mkdir(exist_ok=True)
    throughput = Throughput(steps * batch if multi else examples)
    callbacks = [  # the history row first: an epoch that is backed up is always in history.csv
        keras.callbacks.CSVLogger(str(own / "history.csv"), append=True),
        WorkerBackupAndRestore(str(run_dir / "backup"), writer=cl.is_chief),
        keras.callbacks.ModelCheckpoint(
            str(own / "checkpoints" / "epoch-{epoch:03d}.weights.h5"), save_weights_only=True
        ),
        keras.callbacks.EarlyStopping("val_log_rmse", patience=t.patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(str(own / "tensorboard"), write_graph=False, profile_batch=0),
        throughput,
        EpochLog(label, t.epochs),
    ]
    started = time.time()
    with known_end_of_data(steps if multi else None):
        hist = model.fit(
            train_ds,
            validation_data=valid_ds,
            epochs=t.epochs,
            callbacks=callbacks,
            verbose=0,
            steps_per_epoch=steps if multi else None,
        )
    history = _full_history(own, hist.history)
    history["seconds"] = time.time() - started
    phase_two = None if multi or shards is not None else (cache, shift, batch)  # shards, workers: the main stream
    _second_phase(cfg, model, label, ((train_ds, steps, 0), phase_two), (train, valid), cl, history)
    history["best_epoch"] = int(np.argmin(history["val_log_rmse"])) + 1 if history.get("val_log_rmse") else 0
    history["examples_per_second"] = throughput.rates
    history["strategy"] = {
        "kind": cl.kind,
        "workers": cl.num_workers,
        "replicas": cl.strategy.num_replicas_in_sync,
        "global_batch": batch,
    }
    if cl.is_chief:
        atomic_write_text(run_dir / "history.json", json.dumps(history))
    else:
        distributed.remove(own)
    if cl.kind != "default":
        model = _plain_copy(cfg, pre, modalities, model)
    if cl.is_chief:  # a wide/deep blend takes the mix that is best on the valid split (training/wide.py)
        chosen = fit_blend(model, cfg, valid)
        if chosen is not None:
            history["blend"] = chosen
    return model, history


def _partial_stream(cfg: Config, model: keras.Model, train: pd.DataFrame, main: tuple) -> tuple | None:
    """The second phase's own stream (train.partial_copies): that many input-dropout copies of
    each training row, the incomplete ones alone, in the main fit's batches (`main`: the cache
    folder, the wide shifts, the batch size), with train.partial_text_column_dropout if it is
    set; as (stream, steps per epoch, copies). None: the main fit's stream serves."""
    t = cfg.train
    if t.partial_copies <= 0 or t.input_dropout <= 0:
        return None
    folder, shift, batch = main
    cols = list(model.input)
    examples = t.partial_copies * expected_copies(cfg, train, t.input_dropout, cols)
    if t.partial_text_column_dropout is not None:  # the stream's own text-column rate
        cfg = cfg.model_copy(
            update={"train": t.model_copy(update={"text_column_dropout": t.partial_text_column_dropout})}
        )
    ds = make_dataset(
        cfg,
        train,
        training=True,
        columns=cols,
        cache=_cache(cfg, cols, folder, "train-partial"),
        input_dropout=t.input_dropout,
        shift=shift,
        batch_size=batch,
        copies=t.partial_copies,
        copies_only=True,
    )
    return ds, math.ceil(max(examples, 1) / batch), t.partial_copies


def _second_phase(cfg: Config, model: keras.Model, label: str, streams: tuple, rows: tuple, cl, history: dict) -> None:
    """train.partial_epochs (training/fit/partial.py) for the full model, on its own stream
    (`_partial_stream`, from `streams[1]`: the cache folder, the wide shifts, the batch size; None
    keeps the main one) or the main fit's (`streams[0]`: the stream, its steps per epoch, 0),
    compiled in the strategy's scope; `rows`: the train and valid frames. Its figures go into
    `history["partial"]`."""
    if label != "full" or cfg.train.partial_epochs <= 0:
        return
    (train, valid), (main, own) = rows, streams
    train_ds, steps, copies = (_partial_stream(cfg, model, train, own) if own is not None else None) or main

    def recompile(cfg: Config, model: keras.Model, steps: int) -> None:
        with cl.strategy.scope():
            compile_model(cfg, model, steps)

    extra = {"steps_per_epoch": steps} if cl.multi_worker else {}
    epochs = EpochLog("full-partial-head", cfg.train.partial_epochs)  # the main fit's epoch line, reused
    partial = fit_partial(cfg, model, train_ds, valid, recompile, steps, callbacks=[epochs], **extra)
    if partial is not None:
        partial["stream"] = {"copies": copies, "steps_per_epoch": steps}
        history["partial"] = partial


def batch_size(cfg: Config, examples: int, rows: int) -> int:
    """Examples per step: train.batch_size, or with `train.input_dropout_batch = "scaled"` that
    times the stream's growth (`examples` for `rows` training rows, the dropout copies included),
    so a step sees about train.batch_size complete rows."""
    t = cfg.train
    if t.input_dropout_batch != "scaled" or rows <= 0 or examples <= rows:
        return t.batch_size
    return max(t.batch_size, round(t.batch_size * examples / rows))


def expected_copies(cfg: Config, train: pd.DataFrame, rate: float, cols: list[str]) -> int:
    """How many incomplete copies one draw of input dropout adds to an epoch, in expectation (times
    train.input_dropout_copies): a row giving k of the model's groups gets one unless its draw
    removes none or all of them, 1 - (1-p)^k - p^k."""
    if rate <= 0:
        return 0
    g = given(cfg, train)
    groups = [x for x in ("metadata", "text", "image") if any(c in cols for c in group_columns(cfg, x))]
    k = g[groups].sum(axis=1).to_numpy()
    chance = np.where(k > 1, 1 - (1 - rate) ** k - rate**k, 0.0)
    return int(round(float(chance.sum())))


def _plain_copy(cfg: Config, pre: Preprocessing, modalities: tuple[str, ...], trained: keras.Model) -> keras.Model:
    """The trained model rebuilt outside the strategy, so that predicting and exporting need no other worker."""
    copy = build_model(cfg, pre, modalities)  # same layers in the same order (auto-numbered names differ)
    pairs = list(zip(copy.weights, trained.weights, strict=True))
    if any(c.name != t.name or tuple(c.shape) != tuple(t.shape) for c, t in pairs):
        raise RuntimeError("the rebuilt model's weights do not match the trained model's")
    for c, t in pairs:
        c.assign(np.asarray(t.numpy()))
    return copy


def _cache(cfg: Config, cols: list[str], folder: Path, split: str) -> str | None:
    """A per-process cache file of decoded photos (none without the photo, or with precomputed features)."""
    if not cfg.data.image or cfg.data.image not in cols or frozen_features(cfg):
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
