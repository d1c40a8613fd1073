"""The comparables' parts that need no trained model: the search (exact and HNSW, both metrics),
the weighted median, the embedding's affine map and its Keras layer, the config and card checks,
and the exporter writing the index folder with the version, atomically."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from pydantic import ValidationError

from common.card import ComparablesIndex
from common.neighbours import Neighbours, choose_search
from training.config import UserError, from_dict
from training.evaluation.comparables import weighted_median
from training.model.embedding import PriceEmbedding, embed, embedding_map
from training.model.layers import WideDeepBlend

SHA = "a" * 64


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_exact_l2_search_finds_the_true_nearest_with_similarity_exp_minus_distance() -> None:
    stored = _clustered(500, 6)
    queries = _clustered(7, 6, seed=1)
    idx, sims = Neighbours.build(stored, metric="l2").search(queries, 4)
    dist = np.linalg.norm(stored[None, :, :] - queries[:, None, :], axis=2)
    expected = np.argsort(dist, axis=1)[:, :4]
    assert (idx == expected).all()
    np.testing.assert_allclose(sims, np.exp(-np.take_along_axis(dist, expected, axis=1)), rtol=1e-4)
    assert (np.diff(sims, axis=1) <= 0).all()


def test_exact_cosine_search_ranks_by_the_cosine() -> None:
    stored = _clustered(300, 5)
    q = _clustered(3, 5, seed=2)
    idx, sims = Neighbours.build(stored).search(q, 3)
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    cos = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ unit.T
    assert (idx == np.argsort(-cos, axis=1)[:, :3]).all()
    np.testing.assert_allclose(sims, np.sort(cos, axis=1)[:, ::-1][:, :3], rtol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_hnsw_agrees_with_exact_search_and_survives_a_save(tmp_path: Path, metric: str) -> None:
    stored = _clustered(3000, 8)
    queries = _clustered(50, 8, seed=3)
    exact_idx, _ = Neighbours.build(stored, metric=metric).search(queries, 5)
    hnsw = Neighbours.build(stored, "hnsw", metric=metric)
    assert hnsw.search_kind == "hnsw"
    idx, _ = hnsw.search(queries, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(idx, exact_idx, strict=True)])
    assert recall >= 0.95
    assert sorted(hnsw.save(tmp_path)) == ["hnsw.faiss", "vectors.npy"]
    again = Neighbours.load(tmp_path, "hnsw", metric=metric)
    assert (again.search(queries, 5)[0] == idx).all()


def test_search_cuts_k_to_the_stored_rows_and_checks_dimensions() -> None:
    n = Neighbours.build(np.eye(3), metric="l2")
    idx, sims = n.search(np.eye(3)[:1], 10)
    assert idx.shape == (1, 3) and idx[0, 0] == 0 and sims[0, 0] == pytest.approx(1.0)
    assert n.search(np.eye(3)[:1], 0)[0].shape == (1, 0)
    with pytest.raises(ValueError, match="queries have 2 dimensions, the index 3"):
        n.search(np.ones((1, 2)), 1)


def test_a_vectors_file_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "vectors.npy", np.ones((3, 2), dtype=np.float64))
    with pytest.raises(ValueError, match="non-empty float16"):
        Neighbours.load(tmp_path, "exact")


def test_choose_search() -> None:
    assert choose_search(50_000) == "exact" and choose_search(50_001) == "hnsw"
    assert choose_search(10, "hnsw") == "hnsw" and choose_search(10**7, "exact") == "exact"
    assert choose_search(100, "auto", exact_max=99) == "hnsw"
    with pytest.raises(ValueError, match="auto, exact or hnsw"):
        choose_search(10, "fast")


def test_weighted_median() -> None:
    values = np.array([[1.0, 2.0, 3.0], [5.0, 1.0, 9.0], [4.0, 4.0, 1.0]])
    weights = np.array([[1.0, 1.0, 1.0], [0.1, 0.1, 5.0], [0.2, 0.2, 3.0]])
    assert weighted_median(values, weights).tolist() == [2.0, 9.0, 1.0]


def _toy(blend: float | None) -> keras.Model:
    """Two wide terms and a deep part summed (or blended) into a log price, as head.py builds them."""
    a, b = keras.Input(shape=(1,), name="a"), keras.Input(shape=(1,), name="b")
    deep = keras.layers.Dense(1, kernel_initializer="ones", name="deep")(keras.layers.Concatenate()([a, b]))
    wide = [
        keras.layers.Dense(1, kernel_initializer="ones", use_bias=False, name=f"w{i}")(x) for i, x in enumerate((a, b))
    ]
    if blend is None:
        log_price = keras.layers.Add(name="log_price")([deep, *wide])
    else:
        log_price = WideDeepBlend(blend, name="log_price")([deep, keras.layers.Add()(wide)])
    model = keras.Model({"a": a, "b": b}, log_price)
    model.price_parts = keras.layers.Concatenate()([*wide, log_price])
    model.price_part_names = ["a", "b", "log_price"]
    return model


@pytest.mark.parametrize("blend", [None, 0.4])
def test_the_embedding_is_the_log_price_taken_apart(blend: float | None) -> None:
    model = _toy(blend)
    x = {"a": np.array([[1.0], [2.0], [0.5]]), "b": np.array([[3.0], [1.0], [2.0]])}
    parts = np.asarray(keras.Model(model.input, model.price_parts)(x))
    log_price = np.asarray(model(x)).reshape(-1)
    matrix, offset = embedding_map(model, parts, {"b": 2.0})
    emb = embed(parts, matrix, offset)
    scale = 1.0 if blend is None else 1.0 - blend
    raw = np.stack([scale * x["a"][:, 0], scale * x["b"][:, 0], log_price - scale * (x["a"] + x["b"])[:, 0]], axis=1)
    expected = (raw - raw.mean(axis=0)) * np.array([1.0, 2.0, 1.0])
    np.testing.assert_allclose(emb, expected, rtol=1e-5, atol=1e-5)
    # the columns add back up to the log price (weights 1, before centring)
    plain, _ = embedding_map(model, parts, {})
    np.testing.assert_allclose((parts @ plain).sum(axis=1), log_price, rtol=1e-5)
    # what the SavedModel computes is what numpy computes for the index
    layer = PriceEmbedding(matrix.tolist(), offset.tolist())
    np.testing.assert_allclose(np.asarray(layer(parts.astype("float32"))), emb, rtol=1e-5, atol=1e-6)


BASE = {"data": {"table": "t.csv", "categorical": ["brand"], "text": ["title"], "image": "image"}}


@pytest.mark.parametrize(
    ("comparables", "message"),
    [
        ({"fields": ["price"]}, "comparables.fields: price repeated, or the id, price, split or photo column"),
        ({"fields": ["title", "title"]}, "comparables.fields: title repeated"),
        ({"emphasis": {"colour": 2.0}}, "comparables.emphasis: colour is not a dimension of the embedding"),
        ({"emphasis": {"brand": -1.0}}, "comparables.emphasis: weights must be >= 0"),
        ({"relevance_column": "title"}, "comparables.relevance_column 'title' is not one of data.categorical"),
        ({"k": 50}, "comparables.k"),
        ({"fields": ["title"], "colour": True}, "comparables.colour"),
    ],
)
def test_comparables_config_errors(comparables: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_dict({**BASE, "comparables": comparables})


def test_comparables_config_defaults() -> None:
    cfg = from_dict({**BASE, "comparables": {"fields": ["title", "seller_note"], "emphasis": {"deep": 0.5}}})
    assert cfg.comparables.enabled and cfg.comparables.k == 5 and cfg.comparables.search == "auto"
    assert cfg.shown_columns() == ["seller_note"]  # shown, not fed to the model


def _block(**change) -> dict:
    block = {
        "count": 10,
        "dim": 2,
        "search": "exact",
        "files": {"vectors.npy": SHA, "prices.npy": SHA, "listings.json": SHA},
    }
    return {**block, **change}


def test_card_block_names_every_file_it_needs() -> None:
    assert ComparablesIndex.model_validate(_block()).metric == "l2"
    with pytest.raises(ValidationError, match="files must name hnsw.faiss"):
        ComparablesIndex.model_validate(_block(search="hnsw"))
    with pytest.raises(ValidationError, match="files must name thumbnail_offsets.npy, thumbnails.bin"):
        ComparablesIndex.model_validate(_block(thumbnails={"size": 64, "count": 1, "bytes": 10}))
    with pytest.raises(ValidationError, match="dimensions names 1 dimensions, dim is 2"):
        ComparablesIndex.model_validate(_block(dimensions=["deep"]))
    with pytest.raises(ValidationError, match="String should match pattern"):
        ComparablesIndex.model_validate(_block(files={**_block()["files"], "prices.npy": "abc"}))


def test_the_index_folder_is_exported_with_the_version_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    """The exporter copies the index into its hidden work folder; only the rename shows the
    version, so a failure half-way leaves no version (and no index) a reader could see."""
    from common.files import versions
    from training.export import exporter

    cfg = from_dict({**BASE, "name": "m", "models_dir": str(tmp_path / "models")})
    index = tmp_path / "work" / "comparables"
    index.mkdir(parents=True)
    (index / "vectors.npy").write_bytes(b"x" * 100)
    inp = keras.Input(shape=(1,), name="x")
    serving = keras.Model(inp, {"price": keras.layers.Dense(1)(inp)})
    card = {"currency": "EUR", "inputs": []}

    def broken_copytree(src, dst, **kwargs):
        Path(dst).mkdir()
        (Path(dst) / "vectors.npy").write_bytes(b"x" * 10)  # half of it
        raise OSError("disk full")

    monkeypatch.setattr(exporter.shutil, "copytree", broken_copytree)
    with pytest.raises(OSError, match="disk full"):
        exporter.export(cfg, serving, card, {"comparables": index})
    root = tmp_path / "models" / "m"
    assert versions(root) == []
    monkeypatch.undo()
    out = exporter.export(cfg, serving, card, {"comparables": index})
    assert versions(root) == [1] and (out / "comparables" / "vectors.npy").read_bytes() == b"x" * 100
    assert json.loads((out / "model_card.json").read_text())["version"] == 1
