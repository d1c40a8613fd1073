"""Evaluation that earns trust: the full model against its ablations and the baselines, on one split.

`evaluate_run` is called by the training pipeline once the full model is trained: it trains the
configured ablations (same recipe, fewer branches), averages the single-modality ones (late fusion,
`fusion.py`), trains the scikit-learn baselines, scores every model on the test split with the
same metrics, and writes `evaluation.json` and a self-contained `report.html`, which the exporter
copies into the model's version folder. (An exported model is scored again on new data by
`training.pipeline.evaluate_exported`.)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from common.files import atomic_write_text
from training.config import Config
from training.data.table import Table
from training.evaluation import comparables, fusion, report, subsets
from training.evaluation.ablations import fit_ablation, plan_ablations
from training.evaluation.document import document, save_predictions, write_json
from training.evaluation.fusion import late_fusion
from training.evaluation.scoring import baseline_entries, predict_log, range_entry, scores
from training.features.preprocessing import Preprocessing
from training.model.inputs import active_modalities

log = logging.getLogger(__name__)


def evaluate_run(
    cfg: Config, table: Table, pre: Preprocessing, model: Any, history: dict, run_dir: Path, work: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, Path], comparables.Comparables | None]:
    """Score the full model, its comparables, the ablations and baselines; write the report.

    Returns the evaluation (model name -> {"kind", "test": metrics, "valid": metrics, ...}), the
    files to ship in the version folder (`evaluation.json`, `report.html`, written into `work`)
    and the comparables' index for the exporter (None: `comparables.enabled = false`).
    """
    started = time.time()
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    y = cfg.data.target
    pred_test = predict_log(model, cfg, test)
    pred_valid = predict_log(model, cfg, valid)
    evaluation: dict[str, dict[str, Any]] = {
        "full": {
            "kind": "model",
            "modalities": list(active_modalities(cfg)),
            "description": "the exported model",
            "test": scores(test[y].to_numpy(), pred_test),
            "valid": scores(valid[y].to_numpy(), pred_valid),
            "history": history,
            "interval": range_entry(cfg, valid[y].to_numpy(), pred_valid, test[y].to_numpy(), pred_test),
        }
    }
    preds = {"full": pred_test}
    found = comparables.comparables_run(cfg, model, train, valid, test)
    if found is not None:  # the evidence beside each price, scored as a predictor of its own
        evaluation[comparables.NAME], preds[comparables.NAME], _ = found
    valid_preds: dict[str, Any] = {}
    for name, mods in plan_ablations(cfg):
        evaluation[name], preds[name], valid_preds[name] = fit_ablation(
            cfg, train, valid, test, pre, run_dir, name, mods
        )
    fused = late_fusion(cfg, evaluation, valid_preds, preds, valid[y].to_numpy(), test[y].to_numpy())
    if fused:  # the single-modality models, averaged: what the joint model must beat to be worth it
        evaluation[fusion.NAME], preds[fusion.NAME] = fused
        log.info("event=late_fusion weights=%s test_rmsle=%.4f", fused[0]["weights"], fused[0]["test"]["rmsle"])
    # the one model with inputs removed, beside each subset's ablation; the range per subset
    table_any = subsets.any_subset(cfg, model, valid, test, evaluation["full"]["interval"]["calibration"], evaluation)
    entries, base_preds = baseline_entries(cfg, train, valid, test)
    evaluation.update(entries)
    preds.update(base_preds)
    doc = document(
        cfg, table, evaluation, preds, test, source="train", seconds=time.time() - started, any_subset=table_any
    )
    doc["run"] = str(run_dir)
    save_predictions(run_dir / "test_predictions.csv", cfg, test, preds)
    files = {"evaluation.json": work / "evaluation.json", "report.html": work / "report.html"}
    write_json(files["evaluation.json"], doc)
    atomic_write_text(files["report.html"], report.render_html(doc, test[y].to_numpy(), preds))
    log.info(
        "event=evaluated models=%d seconds=%.0f report=%s", len(evaluation), time.time() - started, files["report.html"]
    )
    return evaluation, files, found[2] if found is not None else None
