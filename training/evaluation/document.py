"""`evaluation.json`: the document that the report, the summary and the model card read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.files import atomic_write_text, jsonable
from training.config import Config
from training.data.table import Table
from training.evaluation.checks import by_category, checks
from training.evaluation.scoring import attach_additions, attach_uncertainty
from training.evaluation.subsets import NAME as ANY_SUBSET


def document(
    cfg: Config,
    table: Table,
    evaluation: dict[str, dict[str, Any]],
    preds: dict[str, np.ndarray],
    test: pd.DataFrame,
    source: str,
    seconds: float,
    any_subset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The document; `any_subset` (`subsets.any_subset`'s table, a training run only) is stored
    under `ANY_SUBSET` and checked beside the other verdicts."""
    y = test[cfg.data.target].to_numpy(dtype="float64")
    attach_uncertainty(evaluation, preds, y)
    attach_additions(evaluation, preds, y)
    splits = table.frame["__split"].value_counts().to_dict()
    doc = {
        "source": source,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": cfg.name,
        "target": cfg.data.target,
        "currency": cfg.data.currency,
        "dataset": {
            **table.fingerprint,
            "splits": {s: int(splits.get(s, 0)) for s in ("train", "valid", "test")},
            "skipped_rows": table.dropped,
        },
        "config": cfg.to_dict(),
        "config_file": cfg.source,
        "models": evaluation,
        "checks": checks(evaluation, any_subset),
        "by_category": by_category(cfg, test, preds),
        "seconds": round(seconds, 1),
    }
    if any_subset is not None:
        doc[ANY_SUBSET] = any_subset
    return doc


def save_predictions(path: Path, cfg: Config, test: pd.DataFrame, preds: dict[str, np.ndarray]) -> None:
    frame = pd.DataFrame({cfg.data.id: test[cfg.data.id].to_numpy(), cfg.data.target: test[cfg.data.target].to_numpy()})
    for name, p in preds.items():
        frame[name] = np.exp(p)
    atomic_write_text(path, frame.to_csv(index=False))


def write_json(path: Path, doc: Any) -> None:
    """JSON-safe `doc` to `path`, through a temporary file and a rename (no reader sees half a file)."""
    atomic_write_text(path, json.dumps(jsonable(doc), indent=2, allow_nan=False))
