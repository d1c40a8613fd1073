"""The HistGradientBoosting baseline: categories (native splits on ordinal codes), the raw numbers
and a low-dimensional TruncatedSVD of the TF-IDF; SVD width, tree size and rounds chosen on valid."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from training.config import Config
from training.evaluation.baselines.ridge import Baseline, Features, log_target, rmse

SVD_DIMS = (32, 64)  # the HGB sees the first k components of one 64-d SVD


HGB_LEAVES = (15, 63)


HGB_MAX_ITER = 500


def fit_hgb(
    cfg: Config,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    feats: Features | None = None,
    svd_dims: Sequence[int] = SVD_DIMS,
    leaves: Sequence[int] = HGB_LEAVES,
    max_iter: int = HGB_MAX_ITER,
) -> Baseline:
    """HistGradientBoosting on categories, numbers and an SVD of the TF-IDF.

    Boosting runs with early stopping on the validation split, then the round with the lowest
    validation RMSLE (read from staged predictions) is kept, per grid point. It runs on one
    thread: on a small shared machine OpenMP's spinning threads made it 5x slower, not faster,
    and one thread also makes the result independent of the core count.
    """
    with threadpool_limits(limits=1):
        return _fit_hgb(cfg, train, valid, feats, svd_dims, leaves, max_iter)


class _HgbDesign:
    """The boosting's design matrix: ordinal category codes, numbers and the first k SVD components."""

    def __init__(self, cfg: Config, train: pd.DataFrame, feats: Features, svd_dims: Sequence[int]):
        d = cfg.data
        self.categorical, self.numeric, self.feats = d.categorical, d.numeric, feats
        self.ordinal = None
        if d.categorical:  # native categorical splits need codes < max_bins: rare categories share one code
            self.ordinal = OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=np.nan, max_categories=254
            ).fit(train[d.categorical])
        text_train = feats.text(train)
        self.svd = None
        if text_train is not None:
            k = min(max(svd_dims), text_train.shape[1] - 1, len(train) - 1)
            if k >= 1:
                self.svd = TruncatedSVD(n_components=k, random_state=cfg.train.seed).fit(text_train)
        self.dims_grid = sorted({min(k, self.svd.n_components) for k in svd_dims}) if self.svd is not None else [0]

    def __call__(self, df: pd.DataFrame, dims: int) -> np.ndarray:
        parts = []
        if self.ordinal is not None:
            parts.append(self.ordinal.transform(df[self.categorical]))
        if self.numeric:
            parts.append(df[self.numeric].to_numpy("float64"))
        if self.svd is not None and dims:
            parts.append(self.svd.transform(self.feats.text(df))[:, :dims])
        return np.hstack(parts) if parts else np.zeros((len(df), 1))


def _fit_hgb(
    cfg: Config,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    feats: Features | None,
    svd_dims: Sequence[int],
    leaves: Sequence[int],
    max_iter: int,
) -> Baseline:
    started = time.time()
    d = cfg.data
    design = _HgbDesign(cfg, train, feats or Features(cfg, train), svd_dims)
    dims_grid = design.dims_grid
    n_cat = len(d.categorical)
    y_train, y_valid = log_target(cfg, train), log_target(cfg, valid)
    grid, best = [], None
    for dims, leaf in itertools.product(dims_grid, leaves):
        x_train, x_valid = design(train, dims), design(valid, dims)
        cat_mask = np.arange(x_train.shape[1]) < n_cat
        model = HistGradientBoostingRegressor(
            learning_rate=0.1,
            max_iter=max_iter,
            max_leaf_nodes=leaf,
            min_samples_leaf=20,
            l2_regularization=1.0,
            categorical_features=cat_mask if n_cat else None,
            early_stopping=True,
            n_iter_no_change=20,
            random_state=cfg.train.seed,
        )
        model.fit(x_train, y_train, X_val=x_valid, y_val=y_valid)
        curve = [rmse(p, y_valid) for p in model.staged_predict(x_valid)]
        rounds = int(np.argmin(curve)) + 1
        grid.append({"svd_dims": dims, "max_leaf_nodes": leaf, "rounds": rounds, "valid_log_rmse": curve[rounds - 1]})
        if best is None or curve[rounds - 1] < best[0]:
            best = (curve[rounds - 1], dims, leaf, rounds, model)
    assert best is not None
    score, dims, leaf, rounds, model = best

    def predict(df: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(limits=1):
            staged = model.staged_predict(design(df, dims))
            return next(itertools.islice(staged, rounds - 1, None))

    return Baseline(
        "hgb",
        predict,
        {"svd_dims": dims, "max_leaf_nodes": leaf, "rounds": rounds, "learning_rate": 0.1},
        score,
        grid,
        time.time() - started,
        "HistGradientBoosting on categories (native) + numbers + TruncatedSVD of the TF-IDF",
    )
