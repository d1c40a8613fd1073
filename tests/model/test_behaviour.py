"""Behaviour tests on the synthetic truth: all else equal, the model moves the price the way the
generator does (data/README.md). A small model is trained once on 3,000 generated listings."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_config
from training.datasets import synthetic


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from training.pipeline import train_and_export

    work = tmp_path_factory.mktemp("behaviour")
    table = synthetic.generate(3000, seed=11, out=work / "data", workers=2, quiet=True)
    cfg = tiny_config(table, work / "models", epochs=10, batch_size=64)
    cfg.model.image_filters = [16, 32, 48]
    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = train_and_export(cfg)
    finally:
        os.chdir(cwd)
    return tf.saved_model.load(str(result["path"])).signatures["serving_default"]


def _jpeg(item: dict, seed: int) -> bytes:
    buf = io.BytesIO()
    synthetic.draw_photo(item, np.random.default_rng(seed)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _items(n: int = 40) -> list[dict]:
    items = []
    for i in range(n):
        it = synthetic.draw_item(np.random.default_rng([99, i]))
        it.update(_pattern="plain", _mark="none", _stains=0, _cut=0)
        it["description"] = f"Cotton {it['category']} by {it['brand'].title()}, size {it['size']}. Fits true to size."
        items.append(it)
    return items


def _price(model, items: list[dict], **change) -> np.ndarray:
    rows = [{**it, **change} for it in items]
    batch = {k: tf.constant([str(r[k]) for r in rows]) for k in
             ("brand", "category", "condition", "size", "colour", "title", "description")}
    batch["age_months"] = tf.constant([float(r["age_months"]) for r in rows])
    batch["image"] = tf.constant([_jpeg(r, i) for i, r in enumerate(rows)])
    return model(**batch)["price"].numpy()


def test_a_worse_condition_does_not_raise_the_price(model):
    items = _items()
    by_level = np.stack([np.log(_price(model, items, condition=c)) for c in synthetic.CONDITIONS])
    assert np.all(np.diff(by_level.mean(axis=1)) < 0), by_level.mean(axis=1)
    assert np.mean(by_level[0] > by_level[-1]) >= 0.95  # new with tags beats poor, item by item


def test_older_items_are_cheaper(model):
    items = _items()
    young, old = _price(model, items, age_months=2), _price(model, items, age_months=96)
    assert np.mean(old < young) >= 0.9


def test_material_and_flaws_in_the_text_move_the_price(model):
    items = _items()
    leather = [{**it, "description": it["description"].replace("Cotton", "Genuine leather")} for it in items]
    holed = [{**it, "description": it["description"] + " There is a small hole near the cuff."} for it in items]
    base = _price(model, items)
    assert np.mean(_price(model, leather) > base) >= 0.8
    assert np.mean(_price(model, holed) < base) >= 0.8
