"""The scikit-learn baselines on tiny inline tables whose price formula we know."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.config import from_dict
from training.evaluation.baselines import (
    RIDGE_ALPHAS,
    fit_baselines,
    fit_hgb,
    fit_mean,
    fit_ridge,
    log_target,
    rmse,
)

BRANDS = {"gucci": 1.2, "zara": 0.2, "h&m": 0.0, "shein": -0.4}
MATERIALS = {"leather": 0.5, "cotton": 0.0, "polyester": -0.2}


def _cfg(**data):
    base = {"table": "items.csv", "categorical": ["brand"], "numeric": ["age"], "text": ["title"]}
    return from_dict({"data": {**base, **data}, "train": {"seed": 0}})


def _table(n: int, seed: int, noise: float = 0.0) -> pd.DataFrame:
    """log price = 3 + brand + material (text only) - 0.01 * age, plus optional noise."""
    rng = np.random.default_rng(seed)
    brand = rng.choice(list(BRANDS), n)
    material = rng.choice(list(MATERIALS), n)
    age = rng.integers(0, 60, n).astype("float32")
    log_price = 3 + np.vectorize(BRANDS.get)(brand) + np.vectorize(MATERIALS.get)(material) - 0.01 * age
    log_price = log_price + rng.normal(0, noise, n) if noise else log_price
    title = [f"{m} jacket by {b}" for b, m in zip(brand, material, strict=True)]
    return pd.DataFrame(
        {"id": [str(i) for i in range(n)], "brand": brand, "age": age, "title": title, "price": np.exp(log_price)}
    )


@pytest.fixture(scope="module")
def split():
    return _table(400, 0, noise=0.05), _table(100, 1, noise=0.05), _table(100, 2, noise=0.05)


def test_mean_baseline_predicts_the_training_mean_log_price():
    cfg = _cfg()
    train = pd.DataFrame({"brand": ["a", "b"], "age": [1.0, 2.0], "title": ["x", "y"], "price": [10.0, 1000.0]})
    valid = pd.DataFrame({"brand": ["a"], "age": [1.0], "title": ["x"], "price": [100.0]})
    b = fit_mean(cfg, train, valid)
    assert b.params["log_mean"] == pytest.approx(math.log(100.0))  # geometric mean of 10 and 1000
    assert np.exp(b.predict_log(valid.iloc[[0, 0, 0]])) == pytest.approx([100.0] * 3)
    assert b.valid_log_rmse == pytest.approx(0.0, abs=1e-12)


def test_ridge_recovers_group_prices_from_one_hot_categories():
    cfg = _cfg(numeric=[], text=[])
    train = pd.DataFrame({"brand": ["a"] * 50 + ["b"] * 50, "price": [10.0] * 50 + [40.0] * 50})
    b = fit_ridge(cfg, train, train.iloc[::10])
    pred = np.exp(b.predict_log(pd.DataFrame({"brand": ["a", "b", "never seen"]})))
    assert pred[0] == pytest.approx(10.0, rel=0.02) and pred[1] == pytest.approx(40.0, rel=0.02)
    assert pred[2] == pytest.approx(20.0, rel=0.02)  # unknown brand: the intercept, the mean log price


def test_ridge_uses_text_and_numbers_and_picks_alpha_on_valid(split):
    train, valid, test = split
    cfg = _cfg()
    b = fit_ridge(cfg, train, valid)
    assert [g["alpha"] for g in b.grid] == list(RIDGE_ALPHAS)
    best = min(b.grid, key=lambda g: g["valid_log_rmse"])
    assert b.params["alpha"] == best["alpha"] and b.valid_log_rmse == best["valid_log_rmse"]
    test_rmsle = rmse(b.predict_log(test), log_target(cfg, test))
    mean_rmsle = rmse(fit_mean(cfg, train, valid).predict_log(test), log_target(cfg, test))
    assert test_rmsle < 0.12 < mean_rmsle  # the material is only in the title: text must be used
    no_text = fit_ridge(_cfg(text=[]), train, valid)
    assert rmse(no_text.predict_log(test), log_target(cfg, test)) > test_rmsle + 0.1


def test_hgb_learns_categories_text_and_numbers(split):
    train, valid, test = split
    cfg = _cfg()
    b = fit_hgb(cfg, train, valid, svd_dims=(4, 8), leaves=(7, 15))
    assert {(g["svd_dims"], g["max_leaf_nodes"]) for g in b.grid} == {(4, 7), (4, 15), (8, 7), (8, 15)}
    best = min(b.grid, key=lambda g: g["valid_log_rmse"])
    assert (b.params["svd_dims"], b.params["max_leaf_nodes"], b.params["rounds"]) == (
        best["svd_dims"],
        best["max_leaf_nodes"],
        best["rounds"],
    )
    assert b.valid_log_rmse == pytest.approx(best["valid_log_rmse"])
    # the kept round is the best on valid, so predicting valid again reproduces that score
    assert rmse(b.predict_log(valid), log_target(cfg, valid)) == pytest.approx(b.valid_log_rmse)
    assert rmse(b.predict_log(test), log_target(cfg, test)) < 0.2


def test_baselines_handle_unseen_categories_missing_numbers_and_many_brands():
    rng = np.random.default_rng(3)
    n = 600
    brand = [f"brand{i}" for i in rng.integers(0, 400, n)]  # more brands than HGB's 255 bins
    train = pd.DataFrame(
        {"brand": brand, "age": rng.uniform(0, 50, n), "title": ["plain shirt"] * n, "price": rng.uniform(5, 50, n)}
    )
    train.loc[::7, "age"] = np.nan
    odd = pd.DataFrame(
        {"brand": ["unheard of", "brand1"], "age": [np.nan, 1e6], "title": ["", "zzz unseen"], "price": [10.0, 10.0]}
    )
    fitted = fit_baselines(_cfg(), train.iloc[:500], train.iloc[500:])
    assert set(fitted) == {"mean", "ridge", "hgb"}
    for b in fitted.values():
        p = b.predict_log(odd)
        assert p.shape == (2,) and np.all(np.isfinite(p)), b.name


def test_text_column_without_words_is_skipped():
    train = pd.DataFrame({"brand": ["a", "b"] * 20, "age": [1.0] * 40, "title": [""] * 40, "price": [10.0, 20.0] * 20})
    fitted = fit_baselines(_cfg(), train, train.iloc[:10], names=("ridge", "hgb"))
    for b in fitted.values():
        assert np.exp(b.predict_log(train.iloc[:2])) == pytest.approx([10.0, 20.0], rel=0.05), b.name


def test_choices_are_deterministic(split):
    train, valid, _ = split
    one, two = fit_baselines(_cfg(), train, valid), fit_baselines(_cfg(), train, valid)
    for name in one:
        assert one[name].params == two[name].params and one[name].valid_log_rmse == two[name].valid_log_rmse
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baselines(_cfg(), train, valid, names=("knn",))
