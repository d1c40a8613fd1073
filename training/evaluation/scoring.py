"""Scoring a model on a split: predictions, metrics, the paired bootstrap, the calibrated range."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.config import Config
from training.data.dataset import make_dataset
from training.evaluation import interval
from training.evaluation.baselines import Baseline, fit_baselines
from training.evaluation.metrics import bootstrap_rmsle, log1p_of_log, price_metrics


def predict_log(model: Any, cfg: Config, df: pd.DataFrame) -> np.ndarray:
    """Log-price predictions of a training model (decoded-image inputs) over a frame."""
    ds = make_dataset(cfg, df, training=False, with_target=False, columns=list(model.input))
    return model.predict(ds, verbose=0).reshape(-1)


def scores(y_true: np.ndarray, log_pred: np.ndarray) -> dict[str, float]:
    """`price_metrics` of log-price predictions."""
    return price_metrics(y_true, np.exp(np.asarray(log_pred, dtype="float64")))


def attach_uncertainty(evaluation: dict[str, dict[str, Any]], preds: dict[str, np.ndarray], y: np.ndarray) -> None:
    """Add to every entry a 95% bootstrap interval of its test RMSLE and, but for the full model,
    of its gap to the full model (paired: both scored on the same resampled rows).

    `preds` are log prices, `y` the prices: both are taken to log(1 + price), RMSLE's scale."""
    scaled = {k: log1p_of_log(p) for k, p in preds.items() if k in evaluation}
    boot = bootstrap_rmsle(np.log1p(np.asarray(y, dtype="float64")), scaled, reference="full")
    for name, b in boot.items():
        evaluation[name]["test_rmsle_ci95"] = b["rmsle_ci"]
        if "delta" in b:
            evaluation[name]["vs_full"] = {"rmsle_delta": b["delta"], "ci95": b["delta_ci"]}


def range_entry(
    cfg: Config, y_valid: np.ndarray, log_pred_valid: np.ndarray, y_test: np.ndarray, log_pred_test: np.ndarray
) -> dict[str, Any]:
    """Calibrate the price range on the valid split and check it on the test split."""
    level = cfg.train.interval_level
    block = interval.calibrate(y_valid, log_pred_valid, level=level)
    return {"calibration": block, "test": interval.assess(block, y_test, log_pred_test)}


def baseline_entries(
    cfg: Config, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Fit the scikit-learn baselines on train (chosen on valid); their entries and test log prices."""
    if not cfg.train.baselines or len(valid) == 0:
        return {}, {}
    fitted: dict[str, Baseline] = fit_baselines(cfg, train, valid)
    entries, preds = {}, {}
    y = cfg.data.target
    for name, b in fitted.items():
        pred = np.asarray(b.predict_log(test), dtype="float64")
        key = f"baseline-{name}"
        entries[key] = {
            "kind": "baseline",
            "description": b.description,
            "params": b.params,
            "test": scores(test[y].to_numpy(), pred),
            "valid": scores(valid[y].to_numpy(), b.predict_log(valid)),
            "grid": b.grid,
            "seconds": round(b.seconds, 2),
        }
        preds[key] = pred
    return entries, preds


def attach_additions(evaluation: dict[str, dict[str, Any]], preds: dict[str, np.ndarray], y: np.ndarray) -> None:
    """What each modality adds to a single one: for every two-branch ablation B and single-branch A
    with B = A + one modality, the paired bootstrap interval of RMSLE(A) - RMSLE(B), kept on B as
    `adds_to[A]` (positive: the added modality helps where the listing has only A's inputs)."""
    single = {k: v for k, v in evaluation.items() if v.get("kind") == "ablation" and len(v.get("modalities", [])) == 1}
    for name, entry in evaluation.items():
        mods = set(entry.get("modalities", []))
        if entry.get("kind") != "ablation" or len(mods) != 2 or name not in preds:
            continue
        for alone, base in single.items():
            if alone not in preds or not set(base["modalities"]) < mods:
                continue
            scaled = {name: log1p_of_log(preds[name]), alone: log1p_of_log(preds[alone])}
            boot = bootstrap_rmsle(np.log1p(np.asarray(y, dtype="float64")), scaled, reference=name)[alone]
            (added,) = mods - set(base["modalities"])
            entry.setdefault("adds_to", {})[alone] = {
                "modality": added,
                "rmsle_delta": boot["delta"],
                "ci95": boot["delta_ci"],
            }
