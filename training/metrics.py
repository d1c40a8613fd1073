"""Price metrics, computed the same way for the model, its ablations and the baselines."""

from __future__ import annotations

import numpy as np


def price_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSLE, MAE, MAPE, median APE, R2 (on price) and the share within 20% of the true price."""
    y = np.asarray(y_true, dtype="float64")
    p = np.maximum(np.asarray(y_pred, dtype="float64"), 1e-9)
    ape = np.abs(p - y) / y
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return {
        "rmsle": float(np.sqrt(np.mean((np.log(p) - np.log(y)) ** 2))),
        "mae": float(np.mean(np.abs(p - y))),
        "mape": float(np.mean(ape)),
        "medape": float(np.median(ape)),
        "r2": 1.0 - ss_res / ss_tot,
        "within_20pct": float(np.mean(ape <= 0.2)),
        "n": int(y.size),
    }
