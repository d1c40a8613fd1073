"""The wide path's Ridge warm start: solved on the model's own features, written in, then frozen."""

from __future__ import annotations

import numpy as np

from tests.conftest import tiny_config
from training.data import load_table
from training.model import build_model, fit_preprocessing
from training.wide import init_wide_from_ridge


def test_ridge_warm_start_beats_the_mean_and_freezes_the_wide_layers(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path)
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model = build_model(cfg, fit_preprocessing(cfg, train), ("metadata", "text"))
    chosen = init_wide_from_ridge(model, cfg, train, valid)
    y = np.log(valid["price"].to_numpy())
    mean_rmsle = float(np.sqrt(np.mean((y - np.log(train["price"]).mean()) ** 2)))
    assert chosen["valid_rmsle"] < 0.8 * mean_rmsle
    wide = [model.get_layer("metadata_encoder").get_layer("condition_wide"),
            model.get_layer("text_encoder").get_layer("description_wide")]
    for layer in wide:
        assert not layer.trainable and np.abs(layer.get_weights()[0]).sum() > 0
    vocab = model.get_layer("metadata_encoder").get_layer("condition_lookup").get_vocabulary()
    offsets = dict(zip(vocab, wide[0].get_weights()[0][:, 0], strict=False))
    assert offsets["new_with_tags"] > offsets["poor"]  # the generator's condition effect, recovered
