"""Any subset: the one full model priced with some input groups removed, beside the model trained
on that subset alone, and a price range calibrated per subset (Mondrian split conformal).

For each of the non-empty subsets of {metadata, text, image} (7 with all three) the valid and test
rows are sent with the other groups removed, exactly as a request that leaves them out
(`training.data.subsets.without`). Valid residuals are pooled by the subset a row actually gives
(a row may lack a group of its own), and each subset gets its own quantiles: a listing with less
information gets a wider range, calibrated on listings like it. A subset with too few calibration
rows for a level says so (`too_few_rows_for`); the service then uses the global range.

With several text columns, a listing whose only text is the first (a title alone) has strata of
its own (`FIRST_TEXT_ONLY` keys, `first_text` in the block): each subset with text is also priced
with every other text column removed, and those residuals calibrate its title-only range. Pooled
with whole texts, a title's range covered 41% of Myntra test prices instead of 80%.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from common.card import FIRST_TEXT_ONLY
from training.config import Config
from training.data.subsets import given, subset_name, subsets, without
from training.evaluation import interval
from training.evaluation.metrics import rmsle
from training.evaluation.scoring import predict_log

log = logging.getLogger(__name__)
NAME = "any_subset"
MIN_ROWS = 30  # fewer calibration rows than this: the subset's quantiles are not trusted


def first_text(cfg: Config) -> str | None:
    """The text column whose listings without any other text get their own range: the first, when
    there are several."""
    return cfg.data.text[0] if len(cfg.data.text) > 1 else None


def _names(cfg: Config, df: pd.DataFrame) -> np.ndarray:
    """Each row's key in `by_inputs`: the groups it gives, `FIRST_TEXT_ONLY` appended when its only
    text is the first text column."""
    g = given(cfg, df)
    names = np.array([subset_name([k for k in g.columns if row[k]]) for _, row in g.iterrows()], dtype=object)
    column = first_text(cfg)
    if column is None or not len(df):
        return names
    has = {c: df[c].fillna("").astype(str).to_numpy() != "" for c in cfg.data.text}
    alone = has[column] & ~np.logical_or.reduce([has[c] for c in cfg.data.text if c != column])
    names[alone] = names[alone] + FIRST_TEXT_ONLY
    return names


def only_first_text(cfg: Config, df: pd.DataFrame) -> pd.DataFrame:
    """The rows of `df` that give the first text column, with every other text column removed."""
    out = df.copy()
    for c in cfg.data.text[1:]:
        out[c] = ""
    return out[out[cfg.data.text[0]].fillna("").astype(str).to_numpy() != ""]


def calibrate_by_subset(residuals: np.ndarray, names: np.ndarray, block: dict[str, Any]) -> dict[str, Any]:
    """`Interval.by_inputs`: per subset name, the split-conformal quantiles of its residuals at
    every level of the global `block`; levels it has too few rows for are listed, not guessed."""
    out = {}
    for name in sorted(set(names.tolist()) - {""}):
        r = residuals[names == name]
        entry: dict[str, Any] = {"n": int(r.size), "quantiles": {}, "too_few_rows_for": []}
        for key in block["quantiles"]:
            level = float(key)
            if r.size < MIN_ROWS:
                entry["too_few_rows_for"].append(level)
                continue
            q_low, q_high, exact = interval.conformal_quantiles(r, level)
            entry["quantiles"][key] = [round(min(q_low, 0.0), 6), round(max(q_high, 0.0), 6)]
            if not exact:
                entry["too_few_rows_for"].append(level)
                del entry["quantiles"][key]
        out[name] = entry
    return out


def quantiles_for(block: dict[str, Any], name: str, level: float) -> tuple[float, float]:
    """The [q_low, q_high] a listing giving subset `name` gets at `level`: its own, else the global."""
    key = interval.level_key(level)
    own = block.get("by_inputs", {}).get(name, {}).get("quantiles", {})
    q = own.get(key) or block["quantiles"][key]
    return float(q[0]), float(q[1])


def _coverage(block: dict[str, Any], names: np.ndarray, y: np.ndarray, log_pred: np.ndarray) -> tuple[float, float]:
    """Coverage and median relative width of the default level's range, each row by its own subset."""
    level = float(block["level"])
    q = np.array([quantiles_for(block, str(n), level) for n in names], dtype="float64").reshape(-1, 2)
    price = np.exp(log_pred)
    low, high = price * np.exp(q[:, 0]), price * np.exp(q[:, 1])
    inside = (y >= low) & (y <= high)
    return float(inside.mean()) if y.size else float("nan"), float(np.median((high - low) / price)) if y.size else 0.0


def _ablation_for(evaluation: dict[str, dict[str, Any]], groups: tuple[str, ...]) -> str | None:
    """The evaluation entry trained on exactly these groups (the full model's own row for all of them)."""
    for name, entry in evaluation.items():
        if entry.get("kind") == "ablation" and set(entry.get("modalities", [])) == set(groups):
            return name
    return None


def any_subset(
    cfg: Config,
    model: Any,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    block: dict[str, Any],
    evaluation: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Score the full model on every subset, calibrate the range per subset (written into `block`
    as `by_inputs`), and set each subset beside its dedicated ablation.

    Returns `{"rows": [...], "by_inputs": ..., "seconds"}`; a row has the subset, the one model's
    test RMSLE with the other groups removed, the ablation's, their ratio, and the range's test
    coverage and median relative width on that subset.
    """
    started = time.time()
    target = cfg.data.target
    plans = subsets(cfg)
    residuals, names, per_subset = [], [], {}
    for groups in plans:
        v, t = without(cfg, valid, groups), without(cfg, test, groups)
        pv, pt = predict_log(model, cfg, v), predict_log(model, cfg, t)
        residuals.append(np.log(v[target].to_numpy(dtype="float64")) - pv)
        names.append(_names(cfg, v))
        per_subset[groups] = (t, pt)
        if first_text(cfg) is not None and "text" in groups:  # the same listings, a title their only text
            v = only_first_text(cfg, v)
            residuals.append(np.log(v[target].to_numpy(dtype="float64")) - predict_log(model, cfg, v))
            names.append(_names(cfg, v))
    block["by_inputs"] = calibrate_by_subset(np.concatenate(residuals), np.concatenate(names), block)
    if first_text(cfg) is not None:
        block["first_text"] = first_text(cfg)
    rows = []
    full_groups = plans[0]
    for groups in plans:
        t, pt = per_subset[groups]
        y = t[target].to_numpy(dtype="float64")
        coverage, width = _coverage(block, _names(cfg, t), y, pt)
        own = _ablation_for(evaluation, groups) if groups != full_groups else "full"
        own_rmsle = evaluation[own]["test"]["rmsle"] if own in evaluation else None
        one = rmsle(y, np.exp(pt))
        rows.append(
            {
                "subset": subset_name(groups),
                "groups": list(groups),
                "rmsle": one,
                "ablation": own,
                "ablation_rmsle": own_rmsle,
                "ratio": one / own_rmsle if own_rmsle else None,
                "range_coverage": coverage,
                "range_median_relative_width": width,
                "calibration_rows": block["by_inputs"].get(subset_name(groups), {}).get("n", 0),
                "n": int(y.size),
            }
        )
        log.info(
            "event=any_subset subset=%s test_rmsle=%.4f ablation=%s ablation_rmsle=%s coverage=%.3f",
            subset_name(groups),
            one,
            own,
            f"{own_rmsle:.4f}" if own_rmsle else "none",
            coverage,
        )
    first = first_text_column(cfg, model, test, block)
    out = {"rows": rows, "level": float(block["level"]), "seconds": round(time.time() - started, 1)}
    return {**out, "first_text_column": first} if first is not None else out


def first_text_column(cfg: Config, model: Any, test: pd.DataFrame, block: dict[str, Any]) -> dict[str, Any] | None:
    """The first text column alone (a title without its description), without and with the photo,
    through the one model: what the photo adds when the listing is thin. None with a single text
    column or no photo."""
    d = cfg.data
    if len(d.text) < 2 or not d.image:
        return None
    column, target = d.text[0], cfg.data.target
    out: dict[str, Any] = {"column": column}
    for key, groups in (("alone", ("text",)), ("with_photo", ("text", "image"))):
        t = only_first_text(cfg, without(cfg, test, groups))
        pt = predict_log(model, cfg, t)
        y = t[target].to_numpy(dtype="float64")
        coverage, _width = _coverage(block, _names(cfg, t), y, pt)
        out[key] = {"rmsle": rmsle(y, np.exp(pt)), "range_coverage": coverage, "n": int(y.size)}
    out["gain"] = 1.0 - out["with_photo"]["rmsle"] / out["alone"]["rmsle"]
    log.info(
        "event=first_text_column column=%s alone=%.4f with_photo=%.4f gain=%.3f",
        column,
        out["alone"]["rmsle"],
        out["with_photo"]["rmsle"],
        out["gain"],
    )
    return out
