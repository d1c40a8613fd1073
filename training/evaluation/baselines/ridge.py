"""The linear baselines and what every baseline shares: the fitted model, the features, the target.

`mean`: the training split's mean log price; `ridge`: Ridge regression on one-hot categories, TF-IDF
(words and bigrams) of each text column and standardised numbers (missing values imputed, with a
flag), its alpha chosen on the validation split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.config import Config

log = logging.getLogger(__name__)

RIDGE_ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
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
