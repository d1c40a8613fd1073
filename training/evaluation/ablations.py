"""Ablations: the same recipe trained on fewer branches, to show what each branch is worth."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import Config
from training.evaluation.document import write_json
from training.evaluation.scoring import predict_log, scores
from training.features.preprocessing import Preprocessing
from training.fit.trainer import fit
from training.model.inputs import active_modalities

log = logging.getLogger(__name__)


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


def fit_ablation(
    cfg: Config,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    pre: Preprocessing,
    run_dir: Path,
    name: str,
    mods: tuple[str, ...],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Train one ablation (or reuse a finished one from this run folder).

    Returns its entry and its log-price predictions on the test and the valid split (the valid ones
    fit the late-fusion weights, `fusion.py`).
    """
    folder = run_dir / f"ablation-{name}"
    done = folder / "result.json"
    if done.exists():  # finished before an interruption: `--resume` does not train it again
        saved = _reusable(json.loads(done.read_text()), mods, len(test), len(valid))
        if saved:
            log.info("event=ablation_reused name=%s", name)
            return (
                saved["entry"],
                np.asarray(saved["test_log_pred"], dtype="float64"),
                np.asarray(saved["valid_log_pred"], dtype="float64"),
            )
    model, history = fit(cfg, train, valid, pre, folder, modalities=mods, label=name)
    y = cfg.data.target
    pred_test, pred_valid = predict_log(model, cfg, test), predict_log(model, cfg, valid)
    entry = {
        "kind": "ablation",
        "modalities": list(mods),
        "test": scores(test[y].to_numpy(), pred_test),
        "valid": scores(valid[y].to_numpy(), pred_valid),
        "history": history,
        "description": "same recipe, " + " + ".join(mods) + " branch" + ("es" if len(mods) > 1 else "") + " only",
    }
    del model
    gc.collect()
    write_json(
        done,
        {
            "modalities": list(mods),
            "entry": entry,
            "test_log_pred": pred_test.tolist(),
            "valid_log_pred": pred_valid.tolist(),
        },
    )
    log.info(
        "event=ablation name=%s test_rmsle=%.4f valid_rmsle=%.4f", name, entry["test"]["rmsle"], entry["valid"]["rmsle"]
    )
    return entry, pred_test, pred_valid


def _reusable(saved: dict[str, Any], mods: tuple[str, ...], n_test: int, n_valid: int) -> dict[str, Any] | None:
    """A finished ablation's result.json, if it is for these modalities and these splits.

    One written before the valid predictions were saved (no `valid_log_pred`) is not reusable:
    the late-fusion weights need them, so that ablation is trained again.
    """
    ok = (
        saved.get("modalities") == list(mods)
        and isinstance(saved.get("entry"), dict)
        and len(saved.get("test_log_pred") or []) == n_test
        and len(saved.get("valid_log_pred") or []) == n_valid
    )
    return saved if ok else None
