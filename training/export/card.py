"""The model card's content, from the pieces of a training run (its format: common/card.py).

`build_card` returns the card without `name`, `version` and `created`, which `exporter.export`
adds when it takes a version; the exporter validates the whole card before it writes it.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import Config
from training.data.table import Table
from training.export import explain as occlusion
from training.features.preprocessing import Preprocessing


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def input_schema(cfg: Config, pre: Preprocessing, train: pd.DataFrame) -> list[dict[str, Any]]:
    """Every input: name, role, dtype, and what a client needs to fill it (vocabulary, range, examples)."""
    d = cfg.data
    out: list[dict[str, Any]] = []
    for c in d.categorical:
        out.append(
            {
                "name": c,
                "role": "categorical",
                "dtype": "string",
                "vocabulary_size": len(pre.vocab[c]),
                "vocabulary": pre.vocab[c],
                "examples": pre.vocab[c][:3],
            }
        )
    for c in d.numeric:
        v = train[c].to_numpy(dtype="float64")
        v = v[np.isfinite(v)]
        mean, std = pre.numeric[c]
        out.append(
            {
                "name": c,
                "role": "numeric",
                "dtype": "float32",
                "min": float(v.min()) if v.size else 0.0,
                "max": float(v.max()) if v.size else 0.0,
                "mean": _finite(mean),
                "std": _finite(std),
                "examples": [float(x) for x in v[:3]],
            }
        )
    for c in d.text:
        ex = [s for s in train[c].head(20).tolist() if s][:2]
        out.append(
            {
                "name": c,
                "role": "text",
                "dtype": "string",
                "vocabulary_size": len(pre.text_vocab[c]),
                "examples": [e[:200] for e in ex],
            }
        )
    if d.image:
        out.append(
            {
                "name": d.image,
                "role": "image",
                "dtype": "string",
                "format": "encoded image bytes",
                "accepts": ["jpeg", "png", "gif", "bmp"],
                "image_size": [cfg.model.image_size] * 2,
                "encoder": cfg.model.image_encoder,
                # one photo: the signature takes one string per listing, as the first models did
                **({"max_photos": cfg.model.max_photos} if cfg.model.max_photos > 1 else {}),
            }
        )
    return out


MISSING_METHOD = (
    "one model for any subset of the input groups: a missing category is its own value (not the "
    "unknown one), a missing number a flag, a missing text an empty bag, a missing photo a learnt "
    "'absent' vector, and the head sees which groups are given; the wide path is the Ridge of the "
    "given pattern (metadata + text, metadata alone, text alone); while training every row was "
    "followed by a copy with each group removed with chance train.input_dropout (ModDrop), at "
    "least one kept; a complete listing is priced by the deep head trained on complete rows, an "
    "incomplete one by a second head on the same branches, trained on the copies"
)


def missing_block(cfg: Config) -> dict[str, Any]:
    """The card's `missing` block: the input groups, and how training taught the model to do without them."""
    d = cfg.data
    groups = {"metadata": [*d.categorical, *d.numeric], "text": list(d.text), "image": [d.image] if d.image else []}
    return {
        "method": MISSING_METHOD,
        "groups": {g: cols for g, cols in groups.items() if cols},
        "input_dropout": cfg.train.input_dropout,
    }


def library_versions() -> dict[str, str]:
    import keras
    import sklearn
    import tensorflow as tf

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def build_card(
    cfg: Config,
    pre: Preprocessing,
    table: Table,
    metrics: dict[str, Any],
    price_range: dict[str, Any],
    history: dict[str, Any],
    run_dir: Path,
    files: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """The card of a trained model.

    Args:
        metrics: the full model's test scores (`training.evaluation.metrics.price_metrics`).
        price_range: `{"calibration": <interval.calibrate block>, "test": <interval.assess block>}`.
        history: the trainer's history (`loss`, `best_epoch`, `seconds`, optionally `blend`).
        run_dir: the run folder, recorded in `training.run`.
        files: the files exported beside the card (a `report.html` is named in the card).
    """
    train, valid, test = (table.part(s) for s in ("train", "valid", "test"))
    rng = price_range["test"]
    card: dict[str, Any] = {
        "target": cfg.data.target,
        "currency": cfg.data.currency,
        "inputs": input_schema(cfg, pre, train),
        "metrics": {
            "test": {
                **metrics,
                "range_level": rng["level"],
                "range_coverage": rng["coverage"],
                "range_median_relative_width": rng["median_relative_width"],
            }
        },
        "interval": price_range["calibration"],
        "missing": missing_block(cfg),
        "explain": occlusion.explain_card(cfg, train),
        "training": {
            "epochs": len(history.get("loss", [])),
            "best_epoch": history.get("best_epoch"),
            "seconds": round(history.get("seconds", 0.0), 1),
            "run": str(run_dir),
            **({"blend": history["blend"]} if history.get("blend") else {}),
            **({"photo_features": history["photo_features"]} if history.get("photo_features") else {}),
        },
        "dataset": {
            **table.fingerprint,
            "splits": {"train": len(train), "valid": len(valid), "test": len(test)},
            "skipped_rows": table.dropped,
            **({"photos_left_out": table.photos_left_out} if table.photos_left_out else {}),
        },
        "config": cfg.to_dict(),
        "versions": library_versions(),
    }
    if "report.html" in (files or {}):
        card["report"] = "report.html"
        card["evaluation"] = "evaluation.json"
    return card


__all__ = ["build_card", "input_schema", "library_versions"]
