"""Evaluation that earns trust: the full model against its ablations and the baselines, on one split.

`evaluate_run` is called by the training pipeline once the full model is trained: it trains the
configured ablations (same recipe, fewer branches) and the scikit-learn baselines, scores every
model on the test split with the same metrics, and writes `evaluation.json` and a self-contained
`report.html`, which the exporter copies into the model's version folder.

`evaluate_exported` scores an exported SavedModel (through its serving signature, on raw inputs)
on a config's test split and writes the same report into that version folder, so a model can be
checked again on new data (`make evaluate MODEL=models/price/1 CONFIG=...`).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import Config, UserError
from training.data.table import Table, load_table
from training.evaluation import interval, report
from training.evaluation.baselines import Baseline, fit_baselines, log_target
from training.evaluation.metrics import bootstrap_rmsle, price_metrics
from training.features.preprocessing import Preprocessing
from training.model.inputs import active_modalities

log = logging.getLogger(__name__)

MAX_CATEGORIES = 12  # the error-by-category plot shows the largest categories only


# ----------------------------------------------------------------------------------------------
# what to train


def plan_ablations(cfg: Config) -> list[tuple[str, tuple[str, ...]]]:
    """(name, modalities) of the ablations `cfg.train.ablations` asks for.

    `single`: each modality alone (`metadata-only` ...); `leave-one-out`: each one left out
    (`no-image` ...); `all`: both. Modalities the config has no columns for are skipped, and so is
    any ablation that would repeat the full model or an earlier ablation (with two modalities,
    `no-text` is `image-only`).
    """
    mode = cfg.train.ablations
    active = active_modalities(cfg)
    plans: list[tuple[str, tuple[str, ...]]] = []
    if mode in ("single", "all"):
        plans += [(f"{m}-only", (m,)) for m in active]
    if mode in ("leave-one-out", "all"):
        plans += [(f"no-{m}", tuple(x for x in active if x != m)) for m in active]
    seen = {frozenset(active)}
    out = []
    for name, mods in plans:
        if not mods or frozenset(mods) in seen:
            continue
        seen.add(frozenset(mods))
        out.append((name, mods))
    return out


# ----------------------------------------------------------------------------------------------
# scoring


def _scores(y_true: np.ndarray, log_pred: np.ndarray) -> dict[str, float]:
    return price_metrics(y_true, np.exp(np.asarray(log_pred, dtype="float64")))


def _fit_ablation(cfg: Config, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, pre: Preprocessing,
                  run_dir: Path, name: str, mods: tuple[str, ...]) -> tuple[dict[str, Any], np.ndarray]:
    """Train one ablation (or reuse a finished one from this run folder); its entry and test predictions."""
    from training.fit.trainer import fit
    from training.pipeline import predict_log

    folder = run_dir / f"ablation-{name}"
    done = folder / "result.json"
    if done.exists():  # finished before an interruption: `--resume` does not train it again
        saved = json.loads(done.read_text())
        if saved.get("modalities") == list(mods) and len(saved.get("test_log_pred", [])) == len(test):
            log.info("event=ablation_reused name=%s", name)
            return saved["entry"], np.asarray(saved["test_log_pred"], dtype="float64")
    model, history = fit(cfg, train, valid, pre, folder, modalities=mods, label=name)
    y = cfg.data.target
    pred_test = predict_log(model, cfg, test)
    entry = {"kind": "ablation", "modalities": list(mods), "test": _scores(test[y].to_numpy(), pred_test),
             "valid": _scores(valid[y].to_numpy(), predict_log(model, cfg, valid)), "history": history,
             "description": "same recipe, " + " + ".join(mods) + " branch" + ("es" if len(mods) > 1 else "") + " only"}
    del model
    gc.collect()
    _write_json(done, {"modalities": list(mods), "entry": entry, "test_log_pred": pred_test.tolist()})
    log.info("event=ablation name=%s test_rmsle=%.4f valid_rmsle=%.4f", name, entry["test"]["rmsle"],
             entry["valid"]["rmsle"])
    return entry, pred_test


def _baseline_entries(cfg: Config, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame
                      ) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    if not cfg.train.baselines or len(valid) == 0:
        return {}, {}
    fitted: dict[str, Baseline] = fit_baselines(cfg, train, valid)
    entries, preds = {}, {}
    y = cfg.data.target
    for name, b in fitted.items():
        pred = np.asarray(b.predict_log(test), dtype="float64")
        key = f"baseline-{name}"
        entries[key] = {"kind": "baseline", "description": b.description, "params": b.params,
                        "test": _scores(test[y].to_numpy(), pred),
                        "valid": _scores(valid[y].to_numpy(), b.predict_log(valid)),
                        "grid": b.grid, "seconds": round(b.seconds, 2)}
        preds[key] = pred
    return entries, preds


def by_category(cfg: Config, test: pd.DataFrame, preds: dict[str, np.ndarray], column: str | None = None,
                top: int = MAX_CATEGORIES) -> dict[str, Any] | None:
    """Test RMSLE (and median APE) per value of a categorical column, for its largest values."""
    column = column or category_column(cfg)
    if not column or column not in test.columns:
        return None
    y = log_target(cfg, test)
    values = test[column].to_numpy(dtype=object).astype(str)
    counts = pd.Series(values).value_counts()
    rows = []
    for value, n in counts.head(top).items():
        mask = values == value
        row: dict[str, Any] = {"value": value, "n": int(n)}
        for name, p in preds.items():
            row[name] = float(np.sqrt(np.mean((p[mask] - y[mask]) ** 2)))
        full = preds.get("full")
        if full is not None:
            row["full_medape"] = float(np.median(np.abs(np.exp(full[mask] - y[mask]) - 1.0)))
        rows.append(row)
    return {"column": column, "categories": int(counts.size), "shown": len(rows), "rows": rows}


def category_column(cfg: Config) -> str:
    """The column that the report breaks errors down by: a config's choice, else the first category."""
    chosen = cfg.train.report_category
    if chosen:
        return chosen
    return cfg.data.categorical[0] if cfg.data.categorical else ""


def checks(evaluation: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Does the full model beat every baseline, and does each branch pull its weight?"""
    full = evaluation["full"]["test"]["rmsle"]
    out: dict[str, Any] = {"full_rmsle": full}
    base = {k: v["test"]["rmsle"] for k, v in evaluation.items() if v.get("kind") == "baseline"}
    if base:
        best = min(base, key=base.__getitem__)
        out.update(best_baseline=best, best_baseline_rmsle=base[best],
                   beats_every_baseline=bool(all(full < r for r in base.values())))
        if "vs_full" in evaluation[best]:
            out["best_baseline_margin_ci95"] = evaluation[best]["vs_full"]["ci95"]
    single = {k: v["test"]["rmsle"] for k, v in evaluation.items()
              if v.get("kind") == "ablation" and len(v.get("modalities", [])) == 1}
    if single:
        best = min(single, key=single.__getitem__)
        out.update(best_single=best, best_single_rmsle=single[best], full_over_best_single=full / single[best])
    loo = {k[3:]: v for k, v in evaluation.items() if v.get("kind") == "ablation" and k.startswith("no-")}
    if loo:  # how much worse the model gets without each branch (positive: the branch helps)
        out["rmsle_increase_without"] = {m: v["test"]["rmsle"] - full for m, v in loo.items()}
        cis = {m: v["vs_full"]["ci95"] for m, v in loo.items() if "vs_full" in v}
        if cis:  # paired bootstrap over the test rows: does the gap stand out from the split's noise?
            out["rmsle_increase_without_ci95"] = cis
    rng = (evaluation["full"].get("interval") or {}).get("test")
    if rng:  # the price range: is its test coverage within 0.05 of its nominal level?
        out.update(range_level=rng["level"], range_coverage=rng["coverage"],
                   range_median_relative_width=rng["median_relative_width"],
                   range_coverage_ok=interval.coverage_ok(rng["coverage"], rng["level"]))
    return out


def attach_uncertainty(evaluation: dict[str, dict[str, Any]], preds: dict[str, np.ndarray], log_y: np.ndarray) -> None:
    """Add to every entry a 95% bootstrap interval of its test RMSLE and, but for the full model,
    of its gap to the full model (paired: both scored on the same resampled rows)."""
    boot = bootstrap_rmsle(log_y, {k: p for k, p in preds.items() if k in evaluation}, reference="full")
    for name, b in boot.items():
        evaluation[name]["test_rmsle_ci95"] = b["rmsle_ci"]
        if "delta" in b:
            evaluation[name]["vs_full"] = {"rmsle_delta": b["delta"], "ci95": b["delta_ci"]}


def range_entry(cfg: Config, y_valid: np.ndarray, log_pred_valid: np.ndarray, y_test: np.ndarray,
                log_pred_test: np.ndarray) -> dict[str, Any]:
    """Calibrate the price range on the valid split and check it on the test split."""
    level = cfg.train.interval_level
    block = interval.calibrate(y_valid, log_pred_valid, level=level)
    return {"calibration": block, "test": interval.assess(block, y_test, log_pred_test)}


# ----------------------------------------------------------------------------------------------
# after training


def evaluate_run(cfg: Config, table: Table, pre: Preprocessing, model: Any, history: dict, run_dir: Path,
                 work: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Path]]:
    """Score the full model, train and score the ablations and baselines, write the report.

    Returns the evaluation (model name -> {"kind", "test": metrics, "valid": metrics, ...}) and the
    files to ship in the version folder (`evaluation.json`, `report.html`, written into `work`).
    """
    from training.pipeline import predict_log

    started = time.time()
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    y = cfg.data.target
    pred_test = predict_log(model, cfg, test)
    pred_valid = predict_log(model, cfg, valid)
    evaluation: dict[str, dict[str, Any]] = {"full": {
        "kind": "model", "modalities": list(active_modalities(cfg)), "description": "the exported model",
        "test": _scores(test[y].to_numpy(), pred_test), "valid": _scores(valid[y].to_numpy(), pred_valid),
        "history": history,
        "interval": range_entry(cfg, valid[y].to_numpy(), pred_valid, test[y].to_numpy(), pred_test)}}
    preds = {"full": pred_test}
    for name, mods in plan_ablations(cfg):
        evaluation[name], preds[name] = _fit_ablation(cfg, train, valid, test, pre, run_dir, name, mods)
    entries, base_preds = _baseline_entries(cfg, train, valid, test)
    evaluation.update(entries)
    preds.update(base_preds)
    doc = _document(cfg, table, evaluation, preds, test, source="train", seconds=time.time() - started)
    doc["run"] = str(run_dir)
    _save_predictions(run_dir / "test_predictions.csv", cfg, test, preds)
    files = {"evaluation.json": work / "evaluation.json", "report.html": work / "report.html"}
    _write_json(files["evaluation.json"], doc)
    _write_text(files["report.html"], report.render_html(doc, test[y].to_numpy(), preds))
    log.info("event=evaluated models=%d seconds=%.0f report=%s", len(evaluation), time.time() - started,
             files["report.html"])
    return evaluation, files


# ----------------------------------------------------------------------------------------------
# an exported model on (possibly new) data


def evaluate_exported(model_path: str | Path, cfg: Config) -> dict[str, Any]:
    """Score an exported model on `cfg`'s test split; write evaluation.json + report.html beside it.

    The model is fed raw inputs (strings, numbers, image file bytes) through its serving signature,
    exactly as the service would. If `cfg.train.baselines`, the baselines are trained on the
    config's own train/valid split and scored on the same test rows, for comparison. The training
    run's evaluation is kept as `evaluation-train.json` / `report-train.html` the first time.
    """
    from training.export.exporter import newest, update_card

    started = time.time()
    try:
        version = newest(model_path)
    except FileNotFoundError as e:
        raise UserError(f"evaluate: {e}") from None
    card_path = version / "model_card.json"
    if not card_path.exists():
        raise UserError(f"evaluate: {version} has no model_card.json")
    card = json.loads(card_path.read_text())
    _check_inputs(card, cfg)
    table = load_table(cfg)
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    if len(test) == 0:
        raise UserError(f"evaluate: the test split of {cfg.data.table} is empty")
    log.info("event=evaluate model=%s rows=%d test=%d", version, len(table.frame), len(test))
    y = cfg.data.target
    pred_test = np.log(np.maximum(serve_prices(version, card, test), 1e-9))
    previous = _previous_evaluation(version)
    history = previous.get("models", {}).get("full", {}).get("history", {})
    evaluation: dict[str, dict[str, Any]] = {"full": {
        "kind": "model", "modalities": previous.get("models", {}).get("full", {}).get("modalities", []),
        "description": f"exported model {version}", "test": _scores(test[y].to_numpy(), pred_test),
        "history": history}}
    if card.get("metrics", {}).get("test"):
        evaluation["full"]["test_at_export"] = card["metrics"]["test"]
    if isinstance(card.get("interval"), dict) and card["interval"].get("quantiles"):  # the stored range, on new rows
        evaluation["full"]["interval"] = {"calibration": card["interval"],
                                          "test": interval.assess(card["interval"], test[y].to_numpy(), pred_test)}
    preds = {"full": pred_test}
    if len(train):
        entries, base_preds = _baseline_entries(cfg, train, valid, test)
        evaluation.update(entries)
        preds.update(base_preds)
    doc = _document(cfg, table, evaluation, preds, test, source="evaluate", seconds=time.time() - started)
    doc["model"] = {"path": str(version), "name": card.get("name"), "version": card.get("version"),
                    "created": card.get("created"), "trained_on": card.get("dataset")}
    for name, keep in (("evaluation.json", "evaluation-train.json"), ("report.html", "report-train.html")):
        if previous.get("source") == "train" and (version / name).exists() and not (version / keep).exists():
            shutil.copyfile(version / name, version / keep)
    _write_json(version / "evaluation.json", doc)
    _write_text(version / "report.html", report.render_html(doc, test[y].to_numpy(), preds))
    m = evaluation["full"]["test"]
    last = {"created": doc["created"], "config": cfg.source, "dataset": doc["dataset"], "test": m}
    if "interval" in evaluation["full"]:
        rng = evaluation["full"]["interval"]["test"]
        last["range"] = {k: rng[k] for k in ("level", "coverage", "median_relative_width")}
    update_card(version, report="report.html", evaluation="evaluation.json", last_evaluation=last)
    for name, entry in evaluation.items():
        log.info("event=evaluated model=%s test_rmsle=%.4f mape=%.3f r2=%.3f", name, entry["test"]["rmsle"],
                 entry["test"]["mape"], entry["test"]["r2"])
    seconds = time.time() - started
    log.info("event=report path=%s seconds=%.0f", version / "report.html", seconds)
    return {"path": version, "metrics": m, "evaluation": evaluation, "seconds": seconds}


def _check_inputs(card: dict[str, Any], cfg: Config) -> None:
    """The config must provide every input the model takes, in the same role."""
    d = cfg.data
    roles = {**{c: "categorical" for c in d.categorical}, **{c: "numeric" for c in d.numeric},
             **{c: "text" for c in d.text}, **({d.image: "image"} if d.image else {})}
    missing = [f["name"] for f in card.get("inputs", []) if f["name"] not in roles]
    if missing:
        raise UserError(f"evaluate: the model takes {', '.join(missing)}, which config {cfg.source or ''} does not name")
    kind = {"numeric": "number", "image": "image"}
    clash = [f["name"] for f in card["inputs"]
             if kind.get(f["role"], "string") != kind.get(roles[f["name"]], "string")]
    if clash:
        raise UserError(f"evaluate: column(s) {', '.join(clash)} have another role in the model than in the config")
    if card.get("target") and card["target"] != d.target:
        log.warning("event=target_differs model=%s config=%s", card["target"], d.target)


def serve_prices(version: Path, card: dict[str, Any], df: pd.DataFrame, batch_size: int = 256) -> np.ndarray:
    """Prices from the exported serving signature on raw inputs (image: the file's bytes)."""
    import tensorflow as tf

    feats: dict[str, np.ndarray] = {}
    image = None
    for f in card["inputs"]:
        name = f["name"]
        if f["role"] == "numeric":
            feats[name] = df[name].to_numpy(dtype="float32")
        else:
            feats[name] = df[name].to_numpy(dtype=object).astype(str)
            image = name if f["role"] == "image" else image
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    ds = tf.data.Dataset.from_tensor_slices(feats)
    if image:
        ds = ds.map(lambda x: {**x, image: tf.io.read_file(x[image])}, num_parallel_calls=tf.data.AUTOTUNE)
    out = [serve(**batch)["price"].numpy().reshape(-1) for batch in ds.batch(batch_size).prefetch(2)]
    return np.concatenate(out).astype("float64") if out else np.zeros(0)


def _previous_evaluation(version: Path) -> dict[str, Any]:
    for name in ("evaluation-train.json", "evaluation.json"):
        try:
            return json.loads((version / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return {}


# ----------------------------------------------------------------------------------------------
# the document


def _document(cfg: Config, table: Table, evaluation: dict[str, dict[str, Any]], preds: dict[str, np.ndarray],
              test: pd.DataFrame, source: str, seconds: float) -> dict[str, Any]:
    attach_uncertainty(evaluation, preds, log_target(cfg, test))
    splits = table.frame["__split"].value_counts().to_dict()
    return {
        "source": source,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": cfg.name,
        "target": cfg.data.target,
        "currency": cfg.data.currency,
        "dataset": {**table.fingerprint, "splits": {s: int(splits.get(s, 0)) for s in ("train", "valid", "test")},
                    "skipped_rows": table.dropped},
        "config": cfg.to_dict(),
        "config_file": cfg.source,
        "models": evaluation,
        "checks": checks(evaluation),
        "by_category": by_category(cfg, test, preds),
        "seconds": round(seconds, 1),
    }


def _save_predictions(path: Path, cfg: Config, test: pd.DataFrame, preds: dict[str, np.ndarray]) -> None:
    frame = pd.DataFrame({cfg.data.id: test[cfg.data.id].to_numpy(), cfg.data.target: test[cfg.data.target].to_numpy()})
    for name, p in preds.items():
        frame[name] = np.exp(p)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def _clean(x: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to null."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_clean(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_json(path: Path, doc: Any) -> None:
    _write_text(path, json.dumps(_clean(doc), indent=2, allow_nan=False))


__all__ = ["attach_uncertainty", "by_category", "category_column", "checks", "evaluate_exported", "evaluate_run",
           "plan_ablations", "range_entry", "serve_prices"]
