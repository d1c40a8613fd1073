"""Price metrics, computed the same way for the model, its ablations and the baselines.

RMSLE is the usual one (scikit-learn's `root_mean_squared_log_error`, Kaggle's, the Mercari price
challenge's): the RMSE of log(1 + price), so figures compare with published ones. The RMSE of
log(price), which the model is trained on, is reported beside it as `log_rmse`.
"""

from __future__ import annotations

import numpy as np


def price_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSLE (log1p), log-price RMSE, MAE, MAPE, median APE, R2 (on price) and the share within 20%."""
    y = np.asarray(y_true, dtype="float64")
    p = np.maximum(np.asarray(y_pred, dtype="float64"), 1e-9)
    ape = np.abs(p - y) / y
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return {
        "rmsle": rmsle(y, p),
        "log_rmse": float(np.sqrt(np.mean((np.log(p) - np.log(y)) ** 2))),
        "mae": float(np.mean(np.abs(p - y))),
        "mape": float(np.mean(ape)),
        "medape": float(np.median(ape)),
        "r2": 1.0 - ss_res / ss_tot,
        "within_20pct": float(np.mean(ape <= 0.2)),
        "n": int(y.size),
    }


def rmsle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sqrt(mean((log1p(pred) - log1p(true))^2)), as scikit-learn defines RMSLE."""
    return float(np.sqrt(np.mean((np.log1p(y_pred) - np.log1p(y_true)) ** 2)))


def log1p_of_log(log_price: np.ndarray) -> np.ndarray:
    """log(1 + price) from log(price): the scale on which RMSLE is the RMSE."""
    return np.log1p(np.exp(np.asarray(log_price, dtype="float64")))


def bootstrap_rmsle(
    log_y: np.ndarray,
    log_preds: dict[str, np.ndarray],
    reference: str,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, object]]:
    """Paired bootstrap over the test rows: how sure is each RMSLE, and each model's gap to `reference`?

    `log_y` and `log_preds` are on the RMSLE's scale, log(1 + price) (see `log1p_of_log`).

    Every resample draws the same rows for all models, so the gap between two models is measured on
    identical rows: row-to-row noise that both share cancels, and a difference smaller than the test
    split can resolve shows as an interval that straddles zero. Returns, per model,
    ``{"rmsle_ci": [lo, hi]}`` and, for every model but the reference,
    ``{"delta": rmsle - rmsle(reference), "delta_ci": [lo, hi]}``.
    """
    y = np.asarray(log_y, dtype="float64")
    sq = {k: (np.asarray(p, dtype="float64") - y) ** 2 for k, p in log_preds.items()}
    n = y.size
    if n < 2:
        return {}
    rng = np.random.default_rng(seed)
    boot = {k: np.empty(n_boot) for k in sq}
    chunk = max(1, min(n_boot, 20_000_000 // n))  # bounded memory for large test splits
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        for k, e in sq.items():
            boot[k][start : start + len(idx)] = np.sqrt(e[idx].mean(axis=1))
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    out: dict[str, dict[str, object]] = {}
    for k in sq:
        out[k] = {"rmsle_ci": [float(v) for v in np.percentile(boot[k], q)]}
        if k != reference and reference in sq:
            out[k]["delta"] = float(np.sqrt(sq[k].mean()) - np.sqrt(sq[reference].mean()))
            out[k]["delta_ci"] = [float(v) for v in np.percentile(boot[k] - boot[reference], q)]
    return out
