"""A second phase for the incomplete listings' head: more epochs of the subsets, the rest frozen.

The full model of a config with input dropout has two heads (training/model/head.py): the complete
listings' and the incomplete ones'. In the main fit each incomplete subset of three groups is 1/8
of each dropout copy, so the partial head sees every subset about a quarter as often as the
dedicated model of that subset sees its rows. `train.partial_epochs` trains the layers of the
partial path alone (the layers named `*_partial`: its own projections and its MLP) for that many
more epochs on the same stream, with everything the complete listings use frozen: their prices do
not move by a digit. The epochs are scored on the valid split with each incomplete subset removed
in turn, and the partial path keeps the weights of its best epoch, or those it had, if no epoch
did better.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import Config
from training.data.dataset import make_dataset
from training.data.subsets import group_columns, subsets, without
from training.fit.quirks import known_end_of_data

log = logging.getLogger(__name__)
SUFFIX = "_partial"


def _leaves(model: keras.Model) -> list:
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True) if not layer._layers]


def partial_layers(model: keras.Model) -> list:
    """The layers of the incomplete listings' path that have weights (named `*_partial`)."""
    return [layer for layer in _leaves(model) if layer.name.endswith(SUFFIX) and layer.weights]


def any_subset_valid(cfg: Config, model: keras.Model, valid: pd.DataFrame) -> tf.data.Dataset:
    """The valid rows once per incomplete subset of the model's groups, the others removed."""
    cols = list(model.input)
    groups = tuple(g for g in ("metadata", "text", "image") if any(c in cols for c in group_columns(cfg, g)))
    frames = [without(cfg, valid, keep) for keep in subsets(cfg, groups) if len(keep) < len(groups)]
    return make_dataset(cfg, pd.concat(frames, ignore_index=True), training=False, columns=cols)


class _KeepBest(keras.callbacks.Callback):
    """Keeps the partial path's weights of the best epoch on the any-subset valid score (the
    weights it started with count as an epoch), and puts them back at the end."""

    def __init__(self, variables: list, start: float):
        super().__init__()
        self.variables, self.best, self.epoch = variables, start, 0
        self.kept = [v.numpy() for v in variables]

    def on_epoch_end(self, epoch, logs=None):
        score = float((logs or {}).get("val_log_rmse", np.inf))
        if score < self.best:
            self.best, self.epoch = score, epoch + 1
            self.kept = [v.numpy() for v in self.variables]

    def on_train_end(self, logs=None):
        for v, value in zip(self.variables, self.kept, strict=True):
            v.assign(value)


def fit_partial(
    cfg: Config,
    model: keras.Model,
    train_ds: tf.data.Dataset,
    valid: pd.DataFrame,
    compile_model,
    steps: int,
    callbacks: list | None = None,
    **fit_args,
) -> dict | None:
    """Train the partial path alone for `train.partial_epochs` more epochs of `train_ds` (the main
    fit's stream). `compile_model(cfg, model, steps)` compiles it (a new optimiser, the same
    schedule); `callbacks` join the fit's (the trainer's epoch log); `fit_args` go to `model.fit` (steps_per_epoch of a repeated stream). Returns the
    figures, or None when there is nothing to do."""
    epochs = cfg.train.partial_epochs
    layers = partial_layers(model)
    if epochs <= 0 or not layers:
        return None
    t0 = time.time()
    leaves = _leaves(model)
    was = {id(layer): layer.trainable for layer in leaves}
    own = {id(layer) for layer in layers}
    for layer in leaves:
        layer.trainable = id(layer) in own
    variables = list(model.trainable_weights)
    compile_model(cfg, model, steps)
    valid_ds = any_subset_valid(cfg, model, valid)
    start = float(model.evaluate(valid_ds, verbose=0, return_dict=True)["log_rmse"])
    keep = _KeepBest(variables, start)

    with known_end_of_data(fit_args.get("steps_per_epoch")):
        model.fit(
            train_ds,
            validation_data=valid_ds,
            epochs=epochs,
            callbacks=[keep, *(callbacks or [])],
            verbose=0,
            **fit_args,
        )
    for layer in leaves:
        layer.trainable = was[id(layer)]
    out = {
        "epochs": epochs,
        "best_epoch": keep.epoch,
        "valid_any_subset_log_rmse_before": round(start, 5),
        "valid_any_subset_log_rmse_after": round(keep.best, 5),
        "weights": int(sum(np.prod(v.shape) for v in variables)),
        "seconds": round(time.time() - t0, 1),
    }
    log.info("event=partial_fit %s", " ".join(f"{k}={v}" for k, v in out.items()))
    return out
