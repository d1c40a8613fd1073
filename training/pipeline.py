"""`make train`: data set config -> table -> preprocessing -> model -> evaluation -> export."""

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
import pandas as pd

from training.config import Config
from training.data.dataset import make_dataset
from training.data.table import Table, load_table
from training.evaluation import interval
from training.evaluation.metrics import price_metrics
from training.export import explain as occlusion
from training.export import exporter
from training.features.preprocessing import fit_preprocessing
from training.fit.distributed import current as current_cluster
from training.fit.distributed import job_run_dir
from training.fit.trainer import fit
from training.model.serving import serving_model

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


def predict_log(model: Any, cfg: Config, df: pd.DataFrame) -> np.ndarray:
    """Log-price predictions of a training model (decoded-image inputs) over a frame."""
    ds = make_dataset(cfg, df, training=False, with_target=False, columns=list(model.input))
    return model.predict(ds, verbose=0).reshape(-1)


def _price_range(cfg: Config, model: Any, valid: pd.DataFrame, y_test: np.ndarray, pred_test: np.ndarray
                 ) -> dict[str, Any]:
    """The price range calibrated on the valid split and checked on the test split (without training.evaluate)."""
    level = cfg.train.interval_level
    block = interval.calibrate(valid[cfg.data.target].to_numpy(), predict_log(model, cfg, valid), level=level)
    return {"calibration": block, "test": interval.assess(block, y_test, np.log(pred_test))}


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
    log.info("event=data rows=%d train=%d valid=%d test=%d skipped=%s", len(table.frame), len(train), len(valid),
             len(test), json.dumps(table.dropped))
    if len(valid) == 0 or len(test) == 0:
        from training.config import UserError

        raise UserError("data: the valid and test splits must not be empty")
    if run_dir is not None:
        run_dir = Path(run_dir)
    elif cl.multi_worker:
        run_dir = job_run_dir(cfg.name)
    else:
        run_dir = run_dir_for(cfg, resume)
    if cl.multi_worker and cfg.train.ablations != "none":
        log.info("event=ablations_skipped reason=multi_worker ablations=%s", cfg.train.ablations)
        cfg.train.ablations = "none"
    if cl.is_chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    pre = fit_preprocessing(cfg, train)
    try:
        return _train_evaluate_export(cfg, table, pre, run_dir, started, shards)
    finally:
        if cl.is_chief:
            shutil.rmtree(run_dir / "cache", ignore_errors=True)


def _train_evaluate_export(cfg: Config, table: Table, pre: Any, run_dir: Path, started: float,
                           shards: tuple[dict, Path] | None = None) -> dict[str, Any]:
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    model, history = fit(cfg, train, valid, pre, run_dir / "full", shards=shards)
    if not current_cluster().is_chief:  # the chief evaluates and exports
        log.info("event=worker_done task=%s epochs=%d", current_cluster().label, len(history.get("loss", [])))
        return {"path": None, "history": history, "worker": current_cluster().label}
    y_test = test[cfg.data.target].to_numpy()
    pred = np.exp(predict_log(model, cfg, test))
    metrics = price_metrics(y_test, pred)
    evaluation: dict[str, Any] = {"full": {"test": metrics, "history": history}}
    extra: dict[str, Path] = {}
    try:
        from training.evaluation import evaluate
    except ImportError:  # the evaluation module is optional while it is being built
        evaluate = None  # type: ignore[assignment]
    work = Path(tempfile.mkdtemp(prefix="eval-", dir=run_dir))
    if evaluate is not None and hasattr(evaluate, "evaluate_run"):
        evaluation, extra = evaluate.evaluate_run(cfg, table, pre, model, history, run_dir, work)
        metrics = evaluation["full"]["test"]
    price_range = evaluation["full"].get("interval") or _price_range(cfg, model, valid, y_test, pred)
    evaluation["full"]["interval"] = price_range
    rng = price_range["test"]
    log.info("event=price_range level=%s test_coverage=%.3f median_relative_width=%.3f calibration_rows=%d",
             rng["level"], rng["coverage"], rng["median_relative_width"], price_range["calibration"]["n"])
    serving = serving_model(cfg, model)
    card = {
        "target": cfg.data.target,
        "currency": cfg.data.currency,
        "inputs": exporter.input_schema(cfg, pre, train),
        "metrics": {"test": {**metrics, "range_level": rng["level"], "range_coverage": rng["coverage"],
                             "range_median_relative_width": rng["median_relative_width"]}},
        "interval": price_range["calibration"],
        "explain": occlusion.explain_card(cfg, train),
        "training": {"epochs": len(history.get("loss", [])), "best_epoch": history.get("best_epoch"),
                     "seconds": round(history.get("seconds", 0.0), 1), "run": str(run_dir),
                     **({"blend": history["blend"]} if history.get("blend") else {})},
        "dataset": {**table.fingerprint, "splits": {"train": len(train), "valid": len(valid), "test": len(test)},
                    "skipped_rows": table.dropped},
        "config": cfg.to_dict(),
        "versions": exporter.library_versions(),
    }
    if "report.html" in extra:
        card["report"] = "report.html"
        card["evaluation"] = "evaluation.json"
    out = exporter.export(cfg, serving, card, extra)
    (run_dir / "DONE").write_text(str(out))
    seconds = time.time() - started
    log.info("event=exported path=%s seconds=%.0f", out, seconds)
    return {"path": out, "metrics": metrics, "evaluation": evaluation, "seconds": seconds, "model": model,
            "preprocessing": pre}
