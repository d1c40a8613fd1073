"""The verdicts: does the full model beat every baseline and its single models averaged (late
fusion), does each branch pull its weight, and does the one model price every subset of its inputs
nearly as well as a model trained on that subset alone?"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.config import Config
from training.evaluation import interval
from training.evaluation.baselines import log_target
from training.evaluation.metrics import log1p_of_log

MAX_CATEGORIES = 12  # the error-by-category plot shows the largest categories only


def by_category(
    cfg: Config, test: pd.DataFrame, preds: dict[str, np.ndarray], column: str | None = None, top: int = MAX_CATEGORIES
) -> dict[str, Any] | None:
    """Test RMSLE (and median APE) per value of a categorical column, for its largest values."""
    column = column or category_column(cfg)
    if not column or column not in test.columns:
        return None
    log_y = log_target(cfg, test)
    y = np.log1p(np.exp(log_y))  # RMSLE's scale, log(1 + price)
    values = test[column].to_numpy(dtype=object).astype(str)
    counts = pd.Series(values).value_counts()
    rows = []
    for value, n in counts.head(top).items():
        mask = values == value
        row: dict[str, Any] = {"value": value, "n": int(n)}
        for name, p in preds.items():
            row[name] = float(np.sqrt(np.mean((log1p_of_log(p[mask]) - y[mask]) ** 2)))
        full = preds.get("full")
        if full is not None:
            row["full_medape"] = float(np.median(np.abs(np.exp(full[mask] - log_y[mask]) - 1.0)))
        rows.append(row)
    return {"column": column, "categories": int(counts.size), "shown": len(rows), "rows": rows}


def category_column(cfg: Config) -> str:
    """The column that the report breaks errors down by: a config's choice, else the first category."""
    chosen = cfg.train.report_category
    if chosen:
        return chosen
    return cfg.data.categorical[0] if cfg.data.categorical else ""


def checks(evaluation: dict[str, dict[str, Any]], any_subset: dict[str, Any] | None = None) -> dict[str, Any]:
    """Does the full model beat every baseline, and does each branch pull its weight?

    With `any_subset` (the evaluation's any-subset table, `subsets.any_subset`), also: is the one
    model within 3% of each subset's dedicated model, and does each subset's range cover its level?
    """
    full = evaluation["full"]["test"]["rmsle"]
    out: dict[str, Any] = {"full_rmsle": full}
    base = {k: v["test"]["rmsle"] for k, v in evaluation.items() if v.get("kind") == "baseline"}
    if base:
        best = min(base, key=base.__getitem__)
        out.update(
            best_baseline=best,
            best_baseline_rmsle=base[best],
            beats_every_baseline=bool(all(full < r for r in base.values())),
        )
        if "vs_full" in evaluation[best]:
            out["best_baseline_margin_ci95"] = evaluation[best]["vs_full"]["ci95"]
    single = {
        k: v["test"]["rmsle"]
        for k, v in evaluation.items()
        if v.get("kind") == "ablation" and len(v.get("modalities", [])) == 1
    }
    if single:
        best = min(single, key=single.__getitem__)
        out.update(best_single=best, best_single_rmsle=single[best], full_over_best_single=full / single[best])
    loo = {k[3:]: v for k, v in evaluation.items() if v.get("kind") == "ablation" and k.startswith("no-")}
    if loo:  # how much worse the model gets without each branch (positive: the branch helps)
        out["rmsle_increase_without"] = {m: v["test"]["rmsle"] - full for m, v in loo.items()}
        cis = {m: v["vs_full"]["ci95"] for m, v in loo.items() if "vs_full" in v}
        if cis:  # paired bootstrap over the test rows: does the gap stand out from the split's noise?
            out["rmsle_increase_without_ci95"] = cis
    out.update(_late_fusion_checks(evaluation, full))
    out.update(_comparables_checks(evaluation, full))
    adds = _additions(evaluation)
    if adds:
        out["modality_adds"] = adds
    rng = (evaluation["full"].get("interval") or {}).get("test")
    if rng:  # the price range: is its test coverage within 0.05 of its nominal level?
        out.update(
            range_level=rng["level"],
            range_coverage=rng["coverage"],
            range_median_relative_width=rng["median_relative_width"],
            range_coverage_ok=interval.coverage_ok(rng["coverage"], rng["level"]),
        )
    out.update(any_subset_checks(any_subset))
    return out


SUBSET_MAX_RATIO = 1.03  # the one model, other inputs removed, at most 3% worse than the subset's own model
SUBSET_COVERAGE_TOLERANCE = 0.05  # ... and each subset's range covers its level +- 0.05 of test prices
PHOTO_GAIN_ON_FIRST_TEXT = 0.05  # the first text column and a photo: at least 5% better than the column alone


def any_subset_checks(table: dict[str, Any] | None) -> dict[str, Any]:
    """Per subset of the inputs: the one model's test RMSLE over its dedicated model's (at most
    `SUBSET_MAX_RATIO`), and the test coverage of the range calibrated for that subset (within
    `SUBSET_COVERAGE_TOLERANCE` of the level).

    A subset without its dedicated model (its ablation not trained) has `ratio_ok` None: not
    checked, which is not a failure. `any_subset_ratio_ok` is None when no subset could be checked
    (the complete subset, the full model against itself, does not count).
    """
    if not table or not table.get("rows"):
        return {}
    level = float(table["level"])
    rows = []
    for r in table["rows"]:
        ratio, coverage = r.get("ratio"), r.get("range_coverage")
        rows.append(
            {
                "subset": r["subset"],
                "rmsle": r.get("rmsle"),
                "ablation": r.get("ablation"),
                "ablation_rmsle": r.get("ablation_rmsle"),
                "ratio": ratio,
                "ratio_ok": None if ratio is None else bool(ratio <= SUBSET_MAX_RATIO + 1e-12),
                "range_coverage": coverage,
                "range_median_relative_width": r.get("range_median_relative_width"),
                "range_coverage_ok": interval.coverage_ok(coverage, level, SUBSET_COVERAGE_TOLERANCE),
            }
        )
    # the complete subset's dedicated model is the full model itself (ratio 1): it proves nothing
    checked = [r["ratio_ok"] for r in rows if r["ratio_ok"] is not None and r["ablation"] != "full"]
    first = table.get("first_text_column")
    extra = {}
    if first:
        extra = {
            "first_text_column": first["column"],
            "first_text_column_rmsle": first["alone"]["rmsle"],
            "first_text_column_with_photo_rmsle": first["with_photo"]["rmsle"],
            "photo_gain_on_first_text_column": first["gain"],
            "photo_gain_on_first_text_column_min": PHOTO_GAIN_ON_FIRST_TEXT,
            "photo_gain_on_first_text_column_ok": bool(first["gain"] >= PHOTO_GAIN_ON_FIRST_TEXT),
            # the range of a listing whose only text is that column, without and with the photo
            "first_text_column_range": {
                key: {
                    "coverage": first[key].get("range_coverage"),
                    "ok": interval.coverage_ok(first[key].get("range_coverage"), level, SUBSET_COVERAGE_TOLERANCE),
                }
                for key in ("alone", "with_photo")
            },
        }
    return {
        **extra,
        "any_subset_level": level,
        "any_subset_max_ratio": SUBSET_MAX_RATIO,
        "any_subset_coverage_tolerance": SUBSET_COVERAGE_TOLERANCE,
        "any_subset": rows,
        "any_subset_ratio_ok": all(checked) if checked else None,
        "any_subset_not_checked": [r["subset"] for r in rows if r["ratio_ok"] is None],
        "any_subset_range_ok": all(r["range_coverage_ok"] for r in rows),
    }


def _additions(evaluation: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What a modality adds to one other alone (scoring.attach_additions), one row per pair."""
    return [
        {
            "modality": gain["modality"],
            "to": alone,
            "with": name,
            "rmsle_delta": gain["rmsle_delta"],
            "ci95": gain["ci95"],
        }
        for name, entry in evaluation.items()
        for alone, gain in (entry.get("adds_to") or {}).items()
    ]


COMPARABLES_MAX_RATIO = 1.25  # the comparables' median may score at most 25% worse than the model
COMPARABLES_MIN_RELEVANCE = 0.8  # ... and 80% of them share the listing's category


def _comparables_checks(evaluation: dict[str, dict[str, Any]], full: float) -> dict[str, Any]:
    """Are the comparables good evidence: is their weighted median price close to the model's
    accuracy, and do most of them share the listing's category?"""
    entry = next((v for v in evaluation.values() if v.get("kind") == "knn"), None)
    if entry is None:
        return {}
    rmsle = entry["test"]["rmsle"]
    out: dict[str, Any] = {
        "comparables_rmsle": rmsle,
        "comparables_k": entry.get("k"),
        "comparables_over_full": rmsle / full if full else None,
        "comparables_close_to_full": bool(full and rmsle / full <= COMPARABLES_MAX_RATIO),
    }
    rel = entry.get("relevance")
    if rel:
        out.update(
            comparables_relevance=rel["share_same"],
            comparables_relevance_column=rel["column"],
            comparables_relevant=bool(rel["share_same"] >= COMPARABLES_MIN_RELEVANCE),
        )
    return out


def _late_fusion_checks(evaluation: dict[str, dict[str, Any]], full: float) -> dict[str, Any]:
    """Does the joint model beat its single-modality models trained apart and averaged (late fusion)?

    It "beats" them when the paired bootstrap interval of the averaged models' RMSLE minus the joint
    model's lies wholly above zero (without an interval, when the gap itself is above zero).
    """
    name = next((k for k, v in evaluation.items() if v.get("kind") == "late-fusion"), None)
    if name is None:
        return {}
    entry = evaluation[name]
    rmsle = entry["test"]["rmsle"]
    out: dict[str, Any] = {
        "late_fusion": name,
        "late_fusion_rmsle": rmsle,
        "late_fusion_weights": dict(entry.get("weights") or {}),
        "late_fusion_margin": rmsle - full,
    }
    ci = (entry.get("vs_full") or {}).get("ci95")
    if ci:
        out["late_fusion_margin_ci95"] = ci
    out["beats_late_fusion"] = bool((ci[0] if ci else rmsle - full) > 0)
    return out
