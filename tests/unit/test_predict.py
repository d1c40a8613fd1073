"""Batch prediction through a SavedModel: the id column comes from the model card, inputs are checked.

A toy SavedModel stands in for a trained one: price = 10 + len(brand) + age + len(photo bytes) / 1000.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.__main__ import parser
from training.config import UserError
from training.predict import card_id_column, model_inputs, predict_table, prices

INPUTS = [
    {"name": "brand", "role": "categorical"},
    {"name": "age", "role": "numeric"},
    {"name": "photo", "role": "image"},
]


def _save_toy(version: Path, card: dict) -> Path:
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="brand"),
                tf.TensorSpec([None], tf.float32, name="age"),
                tf.TensorSpec([None], tf.string, name="photo"),
            ]
        )
        def serve(self, brand, age, photo):
            age = tf.where(tf.math.is_nan(age), tf.zeros_like(age), age)
            n = tf.cast(tf.strings.length(brand), tf.float32) + tf.cast(tf.strings.length(photo), tf.float32) / 1000
            return {"price": 10.0 + n + age}

    toy = Toy()
    tf.saved_model.save(toy, str(version), signatures={"serving_default": toy.serve})
    (version / "model_card.json").write_text(json.dumps(card))
    return version


@pytest.fixture(scope="module")
def toy_models(tmp_path_factory) -> Path:
    """models/ with `articles` (trained with id = "article_id") and `old` (a card without its config)."""
    root = tmp_path_factory.mktemp("models")
    _save_toy(root / "articles" / "1", {"target": "price", "inputs": INPUTS, "config": {"data": {"id": "article_id"}}})
    _save_toy(root / "old" / "1", {"target": "price", "inputs": INPUTS})
    return root


@pytest.fixture
def table(tmp_path) -> Path:
    (tmp_path / "img").mkdir()
    for i in range(3):
        (tmp_path / "img" / f"{i}.jpg").write_bytes(b"x" * (1000 * (i + 1)))
    df = pd.DataFrame({"article_id": ["a1", "a2", "a3"], "sku": [7, 8, 9], "brand": ["ab", None, "abcd"],
                       "age": [1.0, None, 3.0], "photo": [f"img/{i}.jpg" for i in range(3)]})  # fmt: skip
    path = tmp_path / "items.csv"
    df.to_csv(path, index=False)
    return path


def test_the_id_column_is_the_one_the_model_was_trained_with(toy_models, table, tmp_path):
    out = tmp_path / "p.csv"
    assert predict_table(toy_models / "articles", table, out) == 3
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["article_id", "price"] and list(pred["article_id"]) == ["a1", "a2", "a3"]
    np.testing.assert_allclose(pred["price"], [10 + 2 + 1 + 1, 10 + 0 + 0 + 2, 10 + 4 + 3 + 3], rtol=1e-6)
    assert not list(tmp_path.glob(".*tmp*"))


def test_an_id_column_given_overrides_the_card(toy_models, table, tmp_path):
    out = tmp_path / "p.csv"
    predict_table(toy_models / "articles", table, out, id_column="sku")
    assert list(pd.read_csv(out).columns) == ["sku", "price"]
    with pytest.raises(UserError, match="id column 'id' missing from"):
        predict_table(toy_models / "old", table, out)  # no config in the card: the old default, id
    assert parser().parse_args(["predict", "--input", "t", "--output", "o", "--id", "sku"]).id_column == "sku"
    args = parser().parse_args(["predict", "--input", "t", "--output", "o", "--id-column", "sku"])
    assert args.id_column == "sku"
    assert parser().parse_args(["predict", "--input", "t", "--output", "o"]).id_column is None


def test_card_id_column_defaults_to_id():
    assert card_id_column({"config": {"data": {"id": "article_id"}}}) == "article_id"
    assert card_id_column({}) == card_id_column({"config": {}}) == "id"


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda df: df.drop(columns=["brand"]), "column(s) brand missing from"),
        (lambda df: df.assign(age=["old", 1, 2]), "column age has non-numeric value 'old'"),
        (lambda df: df.assign(photo=["img/0.jpg", "img/nope.jpg", None]), "1 image file(s) not found"),
        (lambda df: df.assign(photo=["img/0.jpg", "img/0.jpg", None]), "a row without a photo, which this model needs"),
    ],
)
def test_bad_inputs_are_one_line_errors(toy_models, table, tmp_path, spoil, message):
    spoil(pd.read_csv(table)).to_csv(table, index=False)
    with pytest.raises(UserError) as e:
        predict_table(toy_models / "articles", table, tmp_path / "p.csv")
    assert str(e.value).startswith("predict: ") and message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "p.csv").exists()


def test_prices_batches_a_ready_frame(toy_models, table):
    version = toy_models / "articles" / "1"
    card = json.loads((version / "model_card.json").read_text())
    frame = model_inputs(card, pd.read_csv(table), table.parent)
    one_by_one = prices(version, card, frame, batch_size=1)
    assert one_by_one.dtype == np.float64 and one_by_one.shape == (3,)
    np.testing.assert_array_equal(prices(version, card, frame), one_by_one)
    assert prices(version, card, frame.head(0)).shape == (0,)
