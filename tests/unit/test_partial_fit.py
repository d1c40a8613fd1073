"""The partial head's second phase (train.partial_epochs): the incomplete listings' path learns
on, the complete listings' prices do not move, and the best epoch (or the start) is kept."""

from __future__ import annotations

import math

import numpy as np

from tests.support.tiny import tiny_config
from training.data.dataset import make_dataset
from training.data.subsets import without
from training.data.table import load_table
from training.evaluation.scoring import predict_log
from training.features.preprocessing import fit_preprocessing
from training.fit.partial import fit_partial, partial_layers
from training.fit.trainer import compile_model, expected_copies, fit


def test_second_phase_trains_the_partial_path_alone_and_keeps_its_best(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path, partial_epochs=0)
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model, history = fit(cfg, train, valid, fit_preprocessing(cfg, train), tmp_path / "run")
    assert "partial" not in history  # off by default
    layers = partial_layers(model)
    names = {layer.name for layer in layers}
    assert {"head_out_partial", "head_linear_partial"} <= names and all(n.endswith("_partial") for n in names)
    frozen_before = {w.path: w.trainable for w in model.weights}
    complete = predict_log(model, cfg, valid)
    no_text = predict_log(model, cfg, without(cfg, valid, ("metadata", "image")))
    before = [w.numpy().copy() for layer in layers for w in layer.weights]

    cfg.train.partial_epochs = 3
    cols = list(model.input)
    stream = make_dataset(cfg, train, training=True, columns=cols, input_dropout=cfg.train.input_dropout)
    out = fit_partial(cfg, model, stream, valid, compile_model, steps=4)

    assert out["epochs"] == 3 and 0 <= out["best_epoch"] <= 3
    assert out["valid_any_subset_log_rmse_after"] <= out["valid_any_subset_log_rmse_before"]
    np.testing.assert_array_equal(predict_log(model, cfg, valid), complete)  # the complete head did not move
    after = [w.numpy() for layer in layers for w in layer.weights]
    moved = any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))
    assert moved == (out["best_epoch"] > 0)  # a kept epoch changed the partial path; none: put back
    if out["best_epoch"] > 0:
        assert not np.array_equal(predict_log(model, cfg, without(cfg, valid, ("metadata", "image"))), no_text)
    assert {w.path: w.trainable for w in model.weights} == frozen_before  # trainable flags restored


def test_second_phase_is_off_without_a_partial_head(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path, partial_epochs=2, input_dropout=0.0)
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model, history = fit(cfg, train, valid, fit_preprocessing(cfg, train), tmp_path / "run")
    assert "partial" not in history and partial_layers(model) == []


def test_the_trainer_runs_the_second_phase_on_its_own_stream_of_copies(tiny_dataset, tmp_path):
    """train.partial_copies: the second phase runs in `fit` on a stream of incomplete copies alone,
    its epochs as many as asked, each as many steps as the expected incomplete copies fill."""
    cfg = tiny_config(tiny_dataset, tmp_path, partial_epochs=2, partial_copies=3)
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model, history = fit(cfg, train, valid, fit_preprocessing(cfg, train), tmp_path / "run")
    assert history["partial"]["epochs"] == 2 and 0 <= history["partial"]["best_epoch"] <= 2
    stream = history["partial"]["stream"]
    copies = 3 * expected_copies(cfg, train, cfg.train.input_dropout, list(model.input))
    assert stream["copies"] == 3 and stream["steps_per_epoch"] == math.ceil(copies / cfg.train.batch_size)
    assert (
        history["partial"]["valid_any_subset_log_rmse_after"] <= history["partial"]["valid_any_subset_log_rmse_before"]
    )
