"""Late fusion: the naive alternative to one joint model, separate models and a weighted average.

The single-modality ablations (`metadata-only`, `text-only`, `image-only`) each predict a log price;
the late-fusion model predicts ``sum_k w_k * log_price_k`` (a weighted geometric mean of their
prices). The weights are non-negative and sum to 1, and are fitted on the validation split by
minimising the mean squared error of log price, the loss every model here is trained on: a convex
quadratic over the simplex, solved with SLSQP from equal weights. The test split is never seen by
the fit, so the joint model and the fused one are compared on the same terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from training.config import Config
from training.evaluation.scoring import scores

NAME = "late-fusion"
KIND = "late-fusion"
OBJECTIVE = "mean squared error of log price on the valid split"


def single_models(cfg: Config, evaluation: dict[str, dict[str, Any]]) -> list[str]:
    """The single-modality ablations to fuse, when the config asks for them and there are at least two."""
    if cfg.train.ablations not in ("single", "all"):
        return []
    names = [
        k
        for k, v in evaluation.items()
        if v.get("kind") == "ablation" and k.endswith("-only") and len(v.get("modalities", [])) == 1
    ]
    return names if len(names) >= 2 else []


def _mse(log_preds: np.ndarray, log_y: np.ndarray, w: np.ndarray) -> float:
    return float(np.mean((log_preds @ w - log_y) ** 2))


def _on_simplex(w: np.ndarray) -> np.ndarray:
    """Clip the solver's round-off (a weight of -1e-17) and make the weights sum to exactly 1."""
    w = np.clip(np.asarray(w, dtype="float64"), 0.0, None)
    total = w.sum()
    return w / total if total > 0 else np.full(w.size, 1.0 / w.size)


def fit_weights(log_preds: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise mean((log_preds @ w - log_y)^2).

    Args:
        log_preds: (rows, models) log-price predictions on the fitting split (valid).
        log_y: the rows' log prices.

    Deterministic (SLSQP from equal weights, no randomness). The result is never worse on the
    fitting rows than the best model alone (weight 1 on it) or than equal weights.
    """
    x = np.asarray(log_preds, dtype="float64")
    y = np.asarray(log_y, dtype="float64").reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.size or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"fit_weights: predictions {x.shape} do not match {y.size} targets")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("fit_weights: non-finite predictions or targets")
    k = x.shape[1]
    start = np.full(k, 1.0 / k)
    res = minimize(
        lambda w: _mse(x, y, w),
        start,
        jac=lambda w: 2.0 * x.T @ (x @ w - y) / y.size,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    candidates = [_on_simplex(res.x), start, *np.eye(k)]  # a guard against a solver that stops early
    return min(candidates, key=lambda w: _mse(x, y, w))


def combine(log_preds: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted average of the models' log prices."""
    stacked = np.column_stack([np.asarray(log_preds[k], dtype="float64") for k in weights])
    return stacked @ np.asarray(list(weights.values()), dtype="float64")


def late_fusion(
    cfg: Config,
    evaluation: dict[str, dict[str, Any]],
    valid_preds: dict[str, np.ndarray],
    test_preds: dict[str, np.ndarray],
    y_valid: np.ndarray,
    y_test: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray] | None:
    """The late-fusion entry and its test log prices, or None when there are not two single models to fuse.

    `valid_preds` / `test_preds` are log prices per model name, `y_valid` / `y_test` prices.
    """
    names = [k for k in single_models(cfg, evaluation) if k in valid_preds and k in test_preds]
    y_valid = np.asarray(y_valid, dtype="float64")
    if len(names) < 2 or y_valid.size == 0:
        return None
    w = fit_weights(np.column_stack([valid_preds[k] for k in names]), np.log(y_valid))
    weights = {k: float(v) for k, v in zip(names, w, strict=True)}
    pred_test = combine(test_preds, weights)
    entry = {
        "kind": KIND,
        "modalities": [m for k in names for m in evaluation[k]["modalities"]],
        "members": names,
        "weights": weights,
        "objective": OBJECTIVE,
        "description": (
            f"{len(names)} separate models ({', '.join(names)}), their log prices averaged with "
            "non-negative weights summing to 1, fitted on the valid split (least squared error of log price)"
        ),
        "test": scores(y_test, pred_test),
        "valid": scores(y_valid, combine(valid_preds, weights)),
    }
    return entry, pred_test
