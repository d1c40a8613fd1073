"""The scikit-learn baselines the neural model has to beat, trained and scored on the same split.

Three baselines, all predicting log price:

- `mean`: the training split's mean log price (what you get knowing nothing about an item);
- `ridge`: Ridge regression on one-hot categories, TF-IDF (words and bigrams) of each text
  column and standardised numbers (missing values imputed, with a flag);
- `hgb`: HistGradientBoosting on the categories (native categorical splits on ordinal codes), the
  raw numbers and a low-dimensional TruncatedSVD of that same TF-IDF.

Every hyperparameter (Ridge's alpha; the SVD width, tree size and number of boosting rounds of the
HGB) is chosen on the validation split; the test split is never seen here, so the caller scores
the returned models on it exactly once.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from training.config import Config

log = logging.getLogger(__name__)

NAMES = ("mean", "ridge", "hgb")
RIDGE_ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
SVD_DIMS = (32, 64)  # the HGB sees the first k components of one 64-d SVD
HGB_LEAVES = (15, 63)
HGB_MAX_ITER = 500
TEXT_MAX_FEATURES = 100_000  # per text column


@dataclass
class Baseline:
    """A fitted baseline: its chosen hyperparameters, validation score and a predictor."""

    name: str
    predict_log: Callable[[pd.DataFrame], np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)
    valid_log_rmse: float = float("nan")
    grid: list[dict[str, Any]] = field(default_factory=list)  # every tried setting and its valid RMSLE
    seconds: float = 0.0
    description: str = ""


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, "float64") - np.asarray(b, "float64")) ** 2)))


def log_target(cfg: Config, df: pd.DataFrame) -> np.ndarray:
    return np.log(df[cfg.data.target].to_numpy(dtype="float64"))


class Features:
    """Sparse design matrices fitted on the training split: one-hot, TF-IDF, scaled numbers."""

    def __init__(self, cfg: Config, train: pd.DataFrame):
        d = cfg.data
        self.categorical, self.numeric = list(d.categorical), list(d.numeric)
        self.onehot = (
            OneHotEncoder(handle_unknown="ignore", dtype=np.float32).fit(train[self.categorical])
            if self.categorical
            else None
        )
        self.scaler = (
            make_pipeline(
                SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True), StandardScaler()
            ).fit(train[self.numeric].to_numpy("float64"))
            if self.numeric
            else None
        )
        # words seen in a single listing are mostly noise, but keep them on tiny tables
        min_df = 2 if len(train) >= 1000 else 1
        self.tfidf: dict[str, TfidfVectorizer] = {}
        for c in d.text:
            tv = TfidfVectorizer(
                ngram_range=(1, 2),
                min_df=min_df,
                max_features=TEXT_MAX_FEATURES,
                sublinear_tf=True,
                strip_accents="unicode",
                dtype=np.float32,
            )
            try:
                tv.fit(train[c].tolist())
            except ValueError:  # empty vocabulary: the column holds no words in this split
                log.info("event=baseline_text_skipped column=%s reason=empty_vocabulary", c)
                continue
            self.tfidf[c] = tv

    def text(self, df: pd.DataFrame) -> sp.csr_matrix | None:
        parts = [tv.transform(df[c].tolist()) for c, tv in self.tfidf.items()]
        return sp.hstack(parts, format="csr", dtype=np.float32) if parts else None

    def numbers(self, df: pd.DataFrame) -> np.ndarray | None:
        return self.scaler.transform(df[self.numeric].to_numpy("float64")) if self.scaler else None

    def linear(self, df: pd.DataFrame, text: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """One-hot categories + TF-IDF + scaled numbers, for the Ridge."""
        parts: list[Any] = []
        if self.onehot is not None:
            parts.append(self.onehot.transform(df[self.categorical]))
        text = self.text(df) if text is None else text
        if text is not None:
            parts.append(text)
        nums = self.numbers(df)
        if nums is not None:
            parts.append(sp.csr_matrix(nums.astype(np.float32)))
        if not parts:
            return sp.csr_matrix((len(df), 0), dtype=np.float32)
        return sp.hstack(parts, format="csr", dtype=np.float32)


def fit_mean(cfg: Config, train: pd.DataFrame, valid: pd.DataFrame) -> Baseline:
    started = time.time()
    mu = float(log_target(cfg, train).mean())
    return Baseline(
        "mean",
        lambda df: np.full(len(df), mu),
        {"log_mean": mu},
        rmse(log_target(cfg, valid), mu),
        seconds=time.time() - started,
        description="the training split's mean log price",
    )


def fit_ridge(
    cfg: Config,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    feats: Features | None = None,
    alphas: Sequence[float] = RIDGE_ALPHAS,
) -> Baseline:
    """Ridge on one-hot + TF-IDF + scaled numbers; alpha chosen by validation RMSLE."""
    started = time.time()
    feats = feats or Features(cfg, train)
    x_train, x_valid = feats.linear(train), feats.linear(valid)
    y_train, y_valid = log_target(cfg, train), log_target(cfg, valid)
    grid, best = [], None
    for alpha in alphas:
        model = Ridge(alpha=alpha).fit(x_train, y_train)
        score = rmse(model.predict(x_valid), y_valid)
        grid.append({"alpha": alpha, "valid_log_rmse": score})
        if best is None or score < best[0]:
            best = (score, alpha, model)
    assert best is not None
    score, alpha, model = best
    return Baseline(
        "ridge",
        lambda df: model.predict(feats.linear(df)),
        {"alpha": alpha, "features": int(x_train.shape[1])},
        score,
        grid,
        time.time() - started,
        "Ridge on one-hot categories + TF-IDF (1-2 grams) of the text + scaled numbers",
    )


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


def fit_baselines(
    cfg: Config, train: pd.DataFrame, valid: pd.DataFrame, names: Sequence[str] = NAMES
) -> dict[str, Baseline]:
    """Fit the named baselines on `train`, choosing their hyperparameters on `valid`."""
    out: dict[str, Baseline] = {}
    feats = Features(cfg, train) if {"ridge", "hgb"} & set(names) else None
    for name in names:
        if name == "mean":
            b = fit_mean(cfg, train, valid)
        elif name == "ridge":
            b = fit_ridge(cfg, train, valid, feats)
        elif name == "hgb":
            b = fit_hgb(cfg, train, valid, feats)
        else:
            raise ValueError(f"unknown baseline {name!r} (known: {', '.join(NAMES)})")
        log.info(
            "event=baseline name=%s valid_log_rmse=%.4f params=%s seconds=%.1f",
            name,
            b.valid_log_rmse,
            b.params,
            b.seconds,
        )
        out[name] = b
    return out
