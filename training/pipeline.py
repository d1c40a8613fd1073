"""The two orchestrations: `make train` and `make evaluate`.

`train_and_export`: data set config -> table -> preprocessing -> model -> fit -> evaluation -> export.
`evaluate_exported`: an exported version, scored through its SavedModel on a config's test split.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.files import atomic_write_text, newest
from training.config import Config, UserError
from training.data.table import Table, load_table
from training.evaluation import interval, report
from training.evaluation.document import document, write_json
from training.evaluation.evaluate import evaluate_run
from training.evaluation.scoring import baseline_entries, scores
from training.export import exporter
from training.export.card import build_card
from training.export.comparables import write_index
from training.export.exporter import update_card
from training.features.photo import attach_photo_features, frozen_features, is_feature_cache
from training.features.preprocessing import fit_preprocessing
from training.fit.distributed import current as current_cluster
from training.fit.distributed import job_run_dir
from training.fit.trainer import fit
from training.model.serving import serving_model
from training.predict import prices

log = logging.getLogger(__name__)


def run_dir_for(cfg: Config, resume: bool) -> Path:
    """A new run folder, or with `resume` the newest unfinished one of this model."""
    root = Path("runs") / cfg.name
    if resume:
        unfinished = sorted(p for p in root.glob("*") if p.is_dir() and not (p / "DONE").exists())
        if unfinished:
            log.info("event=resume run=%s", unfinished[-1])
            return unfinished[-1]
        log.info("event=resume_nothing note=no_unfinished_run_found")
    return root / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def train_and_export(cfg: Config, resume: bool = False, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the full model (plus the configured ablations and baselines), evaluate, export.

    Under multi-worker training every worker loads the table, fits the preprocessing and trains;
    only the chief evaluates (baselines included, ablations skipped: they would need the whole
    cluster again) and exports. The run folder must be the same for all workers: `run_dir`, or
    one named after the cluster (`job_run_dir`).
    """
    started = time.time()
    cl = current_cluster()
    shards = None
    if cfg.data.shards:
        from training.data.shards import load_table_for_shards

        table, manifest, folder = load_table_for_shards(cfg)
        shards = (manifest, folder)
    else:
        table = load_table(cfg)
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    log.info(
        "event=data rows=%d train=%d valid=%d test=%d skipped=%s",
        len(table.frame),
        len(train),
        len(valid),
        len(test),
        json.dumps(table.dropped),
    )
    if len(valid) == 0 or len(test) == 0:
        raise UserError("data: the valid and test splits must not be empty")
    run_dir = (
        Path(run_dir) if run_dir is not None else job_run_dir(cfg.name) if cl.multi_worker else run_dir_for(cfg, resume)
    )
    if cl.multi_worker and cfg.train.ablations != "none":
        log.info("event=ablations_skipped reason=multi_worker ablations=%s", cfg.train.ablations)
        cfg.train.ablations = "none"
    if cl.is_chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))
    pre = fit_preprocessing(cfg, train)
    photo_cost = _photo_features(cfg, table, run_dir, shards)
    done = False
    try:
        result = _train_evaluate_export(cfg, table, pre, run_dir, started, shards, photo_cost)
        done = True
        return result
    finally:
        if cl.is_chief:
            _clear_cache(run_dir / "cache", keep_photo_features=not done)


def _clear_cache(folder: Path, keep_photo_features: bool) -> None:
    """The run's scratch files, gone when it ends; a run that failed keeps its photo features, which
    `--resume` reuses (the decoded-photo caches of tf.data are dropped: one may be half written)."""
    if not keep_photo_features:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for entry in folder.glob("*") if folder.is_dir() else []:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif not is_feature_cache(entry):
            entry.unlink(missing_ok=True)


def _photo_features(cfg: Config, table: Table, run_dir: Path, shards: tuple[dict, Path] | None) -> dict | None:
    """A frozen pretrained encoder's features, computed once per photo for every model of the run."""
    if not frozen_features(cfg):
        return None
    if shards is not None:
        raise UserError("config: a frozen pretrained model.image_encoder reads photos from the table, not data.shards")
    return attach_photo_features(cfg, table, run_dir / "cache")


def _train_evaluate_export(
    cfg: Config,
    table: Table,
    pre: Any,
    run_dir: Path,
    started: float,
    shards: tuple[dict, Path] | None = None,
    photo_cost: dict | None = None,
) -> dict[str, Any]:
    train, valid = table.part("train"), table.part("valid")
    model, history = fit(cfg, train, valid, pre, run_dir / "full", shards=shards)
    if photo_cost:
        history["photo_features"] = photo_cost
    if not current_cluster().is_chief:  # the chief evaluates and exports
        log.info("event=worker_done task=%s epochs=%d", current_cluster().label, len(history.get("loss", [])))
        return {"path": None, "history": history, "worker": current_cluster().label}
    work = Path(tempfile.mkdtemp(prefix="eval-", dir=run_dir))
    evaluation, extra, found = evaluate_run(cfg, table, pre, model, history, run_dir, work)
    metrics, price_range = evaluation["full"]["test"], evaluation["full"]["interval"]
    rng = price_range["test"]
    log.info(
        "event=price_range level=%s test_coverage=%.3f median_relative_width=%.3f calibration_rows=%d",
        rng["level"],
        rng["coverage"],
        rng["median_relative_width"],
        price_range["calibration"]["n"],
    )
    serving = serving_model(cfg, model, (found.matrix, found.offset) if found is not None else None)
    card = build_card(cfg, pre, table, metrics, price_range, history, run_dir, extra)
    if found is not None:  # the evidence: the train and valid listings, searchable by the service
        card["comparables"] = write_index(cfg, found, work)
        extra["comparables"] = work / "comparables"
    out = exporter.export(cfg, serving, card, extra)
    (run_dir / "DONE").write_text(str(out))
    seconds = time.time() - started
    log.info("event=exported path=%s seconds=%.0f", out, seconds)
    return {
        "path": out,
        "metrics": metrics,
        "evaluation": evaluation,
        "seconds": seconds,
        "model": model,
        "preprocessing": pre,
    }


def evaluate_exported(model_path: str | Path, cfg: Config) -> dict[str, Any]:
    """Score an exported model on `cfg`'s test split; write evaluation.json + report.html beside it.

    The model is fed raw inputs (strings, numbers, image file bytes) through its serving signature,
    exactly as the service would. If `cfg.train.baselines`, the baselines are trained on the
    config's own train/valid split and scored on the same test rows, for comparison. The training
    run's evaluation is kept as `evaluation-train.json` / `report-train.html` the first time.
    """
    started = time.time()
    version, card = _exported(model_path)
    _check_inputs(card, cfg)
    table = load_table(cfg)
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    if len(test) == 0:
        raise UserError(f"evaluate: the test split of {cfg.data.table} is empty")
    log.info("event=evaluate model=%s rows=%d test=%d", version, len(table.frame), len(test))
    y = test[cfg.data.target].to_numpy()
    pred_test = np.log(np.maximum(prices(version, card, test), 1e-9))
    previous = _previous_evaluation(version)
    evaluation = {"full": _exported_entry(version, card, previous, y, pred_test)}
    preds = {"full": pred_test}
    if len(train):
        entries, base_preds = baseline_entries(cfg, train, valid, test)
        evaluation.update(entries)
        preds.update(base_preds)
    doc = document(cfg, table, evaluation, preds, test, source="evaluate", seconds=time.time() - started)
    doc["model"] = {
        "path": str(version),
        "name": card.get("name"),
        "version": card.get("version"),
        "created": card.get("created"),
        "trained_on": card.get("dataset"),
    }
    if previous.get("source") == "train":  # the training run's evaluation is kept, once
        for name, keep in (("evaluation.json", "evaluation-train.json"), ("report.html", "report-train.html")):
            if (version / name).exists() and not (version / keep).exists():
                shutil.copyfile(version / name, version / keep)
    write_json(version / "evaluation.json", doc)
    atomic_write_text(version / "report.html", report.render_html(doc, y, preds))
    update_card(
        version,
        report="report.html",
        evaluation="evaluation.json",
        last_evaluation=_last_evaluation(cfg, doc, evaluation["full"]),
    )
    for name, entry in evaluation.items():
        log.info(
            "event=evaluated model=%s test_rmsle=%.4f mape=%.3f r2=%.3f",
            name,
            entry["test"]["rmsle"],
            entry["test"]["mape"],
            entry["test"]["r2"],
        )
    seconds = time.time() - started
    log.info("event=report path=%s seconds=%.0f", version / "report.html", seconds)
    return {"path": version, "metrics": evaluation["full"]["test"], "evaluation": evaluation, "seconds": seconds}


def _exported(model_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest version under `model_path` (or that version folder) and its card."""
    try:
        version = newest(model_path)
    except FileNotFoundError as e:
        raise UserError(f"evaluate: {e}") from None
    card_path = version / "model_card.json"
    if not card_path.exists():
        raise UserError(f"evaluate: {version} has no model_card.json")
    return version, json.loads(card_path.read_text())


def _exported_entry(
    version: Path, card: dict[str, Any], previous: dict[str, Any], y: np.ndarray, pred_test: np.ndarray
) -> dict[str, Any]:
    """The exported model's evaluation entry; its stored range, checked on the new rows."""
    before = previous.get("models", {}).get("full", {})
    entry: dict[str, Any] = {
        "kind": "model",
        "modalities": before.get("modalities", []),
        "description": f"exported model {version}",
        "test": scores(y, pred_test),
        "history": before.get("history", {}),
    }
    if card.get("metrics", {}).get("test"):
        entry["test_at_export"] = card["metrics"]["test"]
    if isinstance(card.get("interval"), dict) and card["interval"].get("quantiles"):
        entry["interval"] = {"calibration": card["interval"], "test": interval.assess(card["interval"], y, pred_test)}
    return entry


def _last_evaluation(cfg: Config, doc: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """What the card records of the newest evaluation."""
    last = {"created": doc["created"], "config": cfg.source, "dataset": doc["dataset"], "test": full["test"]}
    if "interval" in full:
        rng = full["interval"]["test"]
        last["range"] = {k: rng[k] for k in ("level", "coverage", "median_relative_width")}
    return last


def _check_inputs(card: dict[str, Any], cfg: Config) -> None:
    """The config must provide every input the model takes, in the same role."""
    d = cfg.data
    roles = {
        **{c: "categorical" for c in d.categorical},
        **{c: "numeric" for c in d.numeric},
        **{c: "text" for c in d.text},
        **({d.image: "image"} if d.image else {}),
    }
    missing = [f["name"] for f in card.get("inputs", []) if f["name"] not in roles]
    if missing:
        raise UserError(
            f"evaluate: the model takes {', '.join(missing)}, which config {cfg.source or ''} does not name"
        )
    kind = {"numeric": "number", "image": "image"}
    clash = [f["name"] for f in card["inputs"] if kind.get(f["role"], "string") != kind.get(roles[f["name"]], "string")]
    if clash:
        raise UserError(f"evaluate: column(s) {', '.join(clash)} have another role in the model than in the config")
    if card.get("target") and card["target"] != d.target:
        log.warning("event=target_differs model=%s config=%s", card["target"], d.target)


def _previous_evaluation(version: Path) -> dict[str, Any]:
    for name in ("evaluation-train.json", "evaluation.json"):
        try:
            return json.loads((version / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return {}
