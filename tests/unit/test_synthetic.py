"""The generator is deterministic, writes the documented columns, and draws photos from the item."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from PIL import Image

from training.data import synthetic


def _digest(folder):
    h = hashlib.sha256((folder / "items.csv").read_bytes())
    for p in sorted((folder / "images").iterdir()):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path):
    a = synthetic.generate(60, seed=3, out=tmp_path / "a", workers=1, quiet=True).parent
    b = synthetic.generate(60, seed=3, out=tmp_path / "b", workers=2, quiet=True).parent
    c = synthetic.generate(60, seed=4, out=tmp_path / "c", workers=1, quiet=True).parent
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_columns_values_and_images(tmp_path):
    table = synthetic.generate(80, seed=0, out=tmp_path / "d", workers=1, quiet=True)
    df = pd.read_csv(table)
    assert list(df.columns) == synthetic.COLUMNS
    assert set(df["condition"]) <= set(synthetic.CONDITIONS)
    assert df["id"].is_unique and (df["price"] > 0).all()
    with Image.open(table.parent / df["image"][0]) as im:
        assert im.format == "JPEG" and im.size[0] >= 96 and im.size[1] >= 96


def test_photo_shows_the_item_colour_and_stains():
    rng = np.random.default_rng(0)
    item = synthetic.draw_item(rng)
    item.update(category="bag", colour="red", _pattern="plain", _mark="none", _stains=0, _cut=0)
    clean = np.asarray(synthetic.draw_photo(item, np.random.default_rng(1))).astype(int)
    centre = clean[60, 48]  # inside the bag's silhouette
    assert centre[0] > 150 and centre[1] < 80 and centre[2] < 80  # red
    stained = np.asarray(synthetic.draw_photo({**item, "_stains": 3}, np.random.default_rng(1))).astype(int)
    brown = (np.abs(stained - [92, 70, 38]).sum(axis=-1) < 40).sum()
    assert brown > 30 and (np.abs(clean - [92, 70, 38]).sum(axis=-1) < 40).sum() == 0


def test_text_only_facts_move_the_price_in_the_documented_direction():
    rows = [synthetic.draw_item(np.random.default_rng([5, i])) for i in range(400)]
    leather = [r["_parts"][1] for r in rows if r["description"].startswith("Genuine leather")]
    poly = [r["_parts"][1] for r in rows if r["description"].startswith("Polyester")]
    assert np.mean(leather) > np.mean(poly) + 0.5
    assert "Genuine leather" not in " ".join(r["title"] for r in rows)  # material is only in the text
