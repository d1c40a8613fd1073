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

import logging
from collections.abc import Sequence

import pandas as pd

from training.config import Config
from training.evaluation.baselines.hgb import HGB_LEAVES, HGB_MAX_ITER, SVD_DIMS, fit_hgb
from training.evaluation.baselines.ridge import (
    RIDGE_ALPHAS,
    TEXT_MAX_FEATURES,
    Baseline,
    Features,
    fit_mean,
    fit_ridge,
    log_target,
    rmse,
)

log = logging.getLogger(__name__)

__all__ = [
    "HGB_LEAVES",
    "HGB_MAX_ITER",
    "NAMES",
    "RIDGE_ALPHAS",
    "SVD_DIMS",
    "TEXT_MAX_FEATURES",
    "Baseline",
    "Features",
    "fit_baselines",
    "fit_hgb",
    "fit_mean",
    "fit_ridge",
    "log_target",
    "rmse",
]

NAMES = ("mean", "ridge", "hgb")


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
