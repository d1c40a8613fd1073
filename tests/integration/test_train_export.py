"""Train a tiny model end to end, export it, and check the SavedModel against the in-memory model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.support.cli import only_line, run_module
from tests.support.tiny import tiny_config, train_in
from training.data.table import load_table
from training.export import exporter
from training.model.serving import serving_model


def _raw_batch(cfg, df: pd.DataFrame) -> dict[str, tf.Tensor]:
    """What a request holds: strings, float32 numbers and the encoded photos' bytes, one per slot ("" empty)."""
    from training.data.dataset import photo_slots

    d = cfg.data
    batch = {c: tf.constant(df[c].astype(str).tolist()) for c in [*d.categorical, *d.text]}
    batch.update({c: tf.constant(df[c].to_numpy(dtype="float32")) for c in d.numeric})
    slots = photo_slots(cfg, df[d.image].to_numpy(dtype=object)).tolist()
    batch[d.image] = tf.constant([[Path(p).read_bytes() if p else b"" for p in row] for row in slots])
    return batch


def test_reloaded_savedmodel_gives_the_same_prices_as_the_in_memory_model(tiny_trained):
    """The parity test: training and serving share every preprocessing step."""
    cfg, result = tiny_trained["config"], tiny_trained["result"]
    test = load_table(cfg).part("test").head(16)
    batch = _raw_batch(cfg, test)
    in_memory = serving_model(cfg, result["model"])(batch)["price"].numpy()
    served = tf.saved_model.load(str(result["path"])).signatures["serving_default"](**batch)["price"].numpy()
    assert served.shape == (len(test),)
    np.testing.assert_allclose(served, in_memory, rtol=1e-5)
    assert np.all(np.isfinite(served)) and np.all(served > 0)


def test_signature_takes_raw_named_inputs_and_returns_price(tiny_trained):
    cfg, path = tiny_trained["config"], tiny_trained["result"]["path"]
    sig = tf.saved_model.load(str(path)).signatures["serving_default"]
    spec = sig.structured_input_signature[1]
    assert set(spec) == set(cfg.feature_columns())
    assert spec["brand"].dtype == tf.string and spec["image"].dtype == tf.string
    assert spec["age_months"].dtype == tf.float32
    assert set(sig.structured_outputs) >= {"price"}


def test_unseen_categories_and_missing_numbers_still_predict(tiny_trained):
    cfg, path = tiny_trained["config"], tiny_trained["result"]["path"]
    row = load_table(cfg).part("test").head(1).copy()
    batch = _raw_batch(cfg, row)
    batch["brand"] = tf.constant(["a brand never seen"])
    batch["age_months"] = tf.constant([np.nan], dtype=tf.float32)
    price = tf.saved_model.load(str(path)).signatures["serving_default"](**batch)["price"].numpy()
    assert np.isfinite(price).all() and price[0] > 0


def test_model_card_describes_inputs_metrics_data_and_versions(tiny_trained):
    cfg, path = tiny_trained["config"], tiny_trained["result"]["path"]
    card = json.loads((path / "model_card.json").read_text())
    assert card["name"] == "tiny" and card["version"] == 1 and card["currency"] == "EUR"
    assert card["target"] == "price" and card["created"].endswith("Z")
    by_name = {f["name"]: f for f in card["inputs"]}
    assert list(by_name) == cfg.feature_columns()
    assert by_name["condition"]["role"] == "categorical" and by_name["condition"]["vocabulary_size"] >= 4
    assert set(by_name["condition"]["vocabulary"]) <= {"new_with_tags", "like_new", "good", "fair", "poor"}
    assert by_name["age_months"]["role"] == "numeric" and by_name["age_months"]["min"] >= 0
    assert by_name["description"]["role"] == "text" and by_name["description"]["examples"]
    assert by_name["image"]["role"] == "image" and by_name["image"]["image_size"] == [32, 32]
    for k in ("rmsle", "mae", "mape", "r2", "medape"):
        assert np.isfinite(card["metrics"]["test"][k])
    assert card["dataset"]["rows"] > 200 and len(card["dataset"]["sha256"]) == 64
    assert card["config"]["data"]["target"] == "price"
    assert card["versions"]["tensorflow"] == tf.__version__


def test_export_takes_the_next_version_and_leaves_no_temporary_folder(tiny_trained, tmp_path):
    cfg, result = tiny_trained["config"], tiny_trained["result"]
    cfg2 = tiny_config(Path(cfg.data.table), tmp_path)
    serving = serving_model(cfg2, result["model"])
    first = exporter.export(cfg2, serving, {"inputs": []})
    second = exporter.export(cfg2, serving, {"inputs": []})
    assert (first.name, second.name) == ("1", "2")
    assert sorted(p.name for p in first.parent.iterdir()) == ["1", "2"]
    assert exporter.newest(first.parent) == second
    assert json.loads((second / "model_card.json").read_text())["version"] == 2


def test_make_predict_writes_a_price_per_row(tiny_trained, tiny_model_dir, tmp_path):
    cfg = tiny_trained["config"]
    table = Path(cfg.data.table)
    out = tmp_path / "predictions.csv"
    proc = run_module(
        "training", "predict", "--model", str(tiny_model_dir), "--input", str(table), "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # a quiet start: no native TensorFlow lines, no log noise
    pred = pd.read_csv(out)
    src = pd.read_csv(table)
    assert list(pred.columns) == ["id", "price"] and len(pred) == len(src)
    assert (pred["id"] == src["id"]).all() and (pred["price"] > 0).all()
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "nope.csv"], "input table nope.csv does not exist"),
        (["--model", "/nonexistent/models"], "no exported model versions"),
    ],
)
def test_predict_errors_are_one_line(tiny_trained, tiny_model_dir, tmp_path, args, message):
    base = {
        "--model": str(tiny_model_dir),
        "--input": tiny_trained["config"].data.table,
        "--output": str(tmp_path / "p.csv"),
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = [x for kv in base.items() for x in kv]
    proc = run_module("training", "predict", *argv)
    assert proc.returncode == 2
    line = only_line(proc.stderr)
    assert line.startswith("error: predict:") and message in line


def test_train_cli_rejects_a_bad_config_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ntable = "x.csv"\ntext = ["t"]\nwhat = 1\n')
    proc = run_module("training", "train", "--config", str(bad), timeout=120)
    assert proc.returncode == 2
    line = only_line(proc.stderr)
    assert line.startswith("error: config: unknown key 'data.what' (known: categorical, ")
    assert "table, target, text" in line  # the known keys of [data], sorted


@pytest.mark.slow  # trains in the test (no fixture says so)
def test_the_small_data_recipe_exports_with_the_same_prices_as_in_memory(tiny_dataset, tmp_path):
    """The Myntra recipe (summed fusion, three members, wide/deep blend, photo augmentation,
    halving rate) trains, exports, and serves the in-memory model's prices: the members' mean and
    the blend live in the SavedModel, and augmentation is off in inference."""
    cfg = tiny_config(tiny_dataset, tmp_path / "models", lr_schedule="halving", learning_rate=3e-3)
    m = cfg.model
    m.fusion, m.members, m.blend, m.image_augment = "sum", 3, 0.4, True
    result = train_in(tmp_path, cfg)
    card = json.loads((Path(result["path"]) / "model_card.json").read_text())
    assert card["config"]["model"]["members"] == 3 and 0.0 <= card["training"]["blend"]["deep_weight"] <= 1.0
    test = load_table(cfg).part("test").head(16)
    batch = _raw_batch(cfg, test)
    in_memory = serving_model(cfg, result["model"])(batch)["price"].numpy()
    served = tf.saved_model.load(str(result["path"])).signatures["serving_default"](**batch)["price"].numpy()
    np.testing.assert_allclose(served, in_memory, rtol=1e-5)
    again = tf.saved_model.load(str(result["path"])).signatures["serving_default"](**batch)["price"].numpy()
    np.testing.assert_array_equal(served, again)  # no random augmentation in the served model


@pytest.mark.slow  # trains in the test
def test_the_pretrained_encoder_is_served_with_the_features_it_was_trained_on(tiny_dataset, tmp_path):
    """The parity test for a frozen pretrained encoder: the training model was fed features that the
    feature pass computed once per photo; the SavedModel computes them itself from the request's
    bytes (decode, resize, the same backbone). Both must give the same price."""
    from training.evaluation.scoring import predict_log
    from training.features.photo import attach_photo_features

    cfg = tiny_config(tiny_dataset, tmp_path / "models")
    cfg.model.image_encoder, cfg.model.image_size = "efficientnet_lite0", 64
    result = train_in(tmp_path, cfg)
    card = json.loads((Path(result["path"]) / "model_card.json").read_text())
    image = next(f for f in card["inputs"] if f["role"] == "image")
    assert image["encoder"] == "efficientnet_lite0" and image["image_size"] == [64, 64]
    assert card["training"]["photo_features"]["photos"] == len(load_table(cfg).frame)
    assert result["model"].input[cfg.data.image].shape[1:] == (4, 1280)  # fed features, not pixels
    table = load_table(cfg)
    attach_photo_features(cfg, table, tmp_path / "features")
    test = table.part("test").head(16)
    trained_on = np.exp(predict_log(result["model"], cfg, test))
    served = tf.saved_model.load(str(result["path"])).signatures["serving_default"](**_raw_batch(cfg, test))["price"]
    np.testing.assert_allclose(served.numpy(), trained_on, rtol=1e-4)
    assert not (tmp_path / card["training"]["run"] / "cache").exists()  # the run's feature cache is gone


def test_the_scratch_encoder_is_served_with_the_pixels_it_was_trained_on(tiny_trained):
    """The same check for the scratch CNN: the input pipeline's decoded photos and the SavedModel's."""
    from training.evaluation.scoring import predict_log

    cfg, result = tiny_trained["config"], tiny_trained["result"]
    test = load_table(cfg).part("test").head(16)
    trained_on = np.exp(predict_log(result["model"], cfg, test))
    served = tf.saved_model.load(str(result["path"])).signatures["serving_default"](**_raw_batch(cfg, test))["price"]
    np.testing.assert_allclose(served.numpy(), trained_on, rtol=1e-5)


def test_every_subset_of_inputs_is_served_as_the_training_model_prices_it(tiny_trained):
    """Parity with inputs missing: a frame with groups removed (training's `without`) through the
    training model, and the same listings sent raw ("" / NaN / empty photo slots) to the SavedModel."""
    from training.data.subsets import subsets, without
    from training.evaluation.scoring import predict_log

    cfg, result = tiny_trained["config"], tiny_trained["result"]
    test = load_table(cfg).part("test").head(12)
    serve = tf.saved_model.load(str(result["path"])).signatures["serving_default"]
    prices = {}
    for keep in subsets(cfg):
        frame = without(cfg, test, keep)
        trained_on = np.exp(predict_log(result["model"], cfg, frame))
        served = serve(**_raw_batch(cfg, frame))["price"].numpy()
        np.testing.assert_allclose(served, trained_on, rtol=1e-5)
        prices[keep] = served
    assert len(prices) == 7
    assert not np.allclose(prices[("metadata",)], prices[("text",)])  # each subset is priced on its own inputs


def test_several_photos_are_pooled_the_same_in_training_and_serving(tiny_trained):
    """Two or three photos per listing: the pipeline's slots and mask, and the SavedModel's strings."""
    from training.evaluation.scoring import predict_log

    cfg, result = tiny_trained["config"], tiny_trained["result"]
    test = load_table(cfg).part("test").head(6).copy()
    others = test["image"].tolist()[::-1]
    test["image"] = [
        ";".join([a, b] + ([a] if i % 2 else [])) for i, (a, b) in enumerate(zip(test["image"], others, strict=True))
    ]
    trained_on = np.exp(predict_log(result["model"], cfg, test))
    serve = tf.saved_model.load(str(result["path"])).signatures["serving_default"]
    served = serve(**_raw_batch(cfg, test))["price"].numpy()
    np.testing.assert_allclose(served, trained_on, rtol=1e-5)
    one = serve(**_raw_batch(cfg, test.assign(image=[c.split(";")[0] for c in test["image"]])))["price"].numpy()
    assert not np.allclose(one, served)  # the second photo counts


def test_the_container_tests_reference_price_feeds_the_cards_photo_slots(tiny_trained):
    """deploy/container/sample.py prices its sample on the host through the SavedModel signature:
    with the card's max_photos it must send [1, max_photos] photos, as the service does."""
    from deploy.container.sample import make_sample

    version = Path(tiny_trained["result"]["path"])
    card = json.loads((version / "model_card.json").read_text())
    assert next(s for s in card["inputs"] if s["role"] == "image")["max_photos"] == 4
    sample = make_sample(version, card)
    assert np.isfinite(sample.expected) and sample.expected > 0
