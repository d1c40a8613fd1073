"""Batch prediction over a table with the newest exported version of a model.

The table's columns are the model card's inputs; image paths are relative to the table's folder
(or absolute). The output (id and predicted price) is written to a temporary file, then renamed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import UserError
from training.export.exporter import newest

log = logging.getLogger(__name__)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"predict: input table {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, low_memory=False)


def predict_table(model: str | Path, input_path: str | Path, output: str | Path, id_column: str = "id",
                  batch_size: int = 256) -> int:
    """Predict every row of `input_path`; write `id,<target>` to `output`. Returns the row count."""
    try:
        version = newest(model)
    except FileNotFoundError as e:
        raise UserError(f"predict: {e}") from None
    card = json.loads((version / "model_card.json").read_text())
    df = _read_table(Path(input_path))
    inputs = card["inputs"]
    missing = [f["name"] for f in inputs if f["name"] not in df.columns]
    if missing:
        raise UserError(f"predict: column(s) {', '.join(missing)} missing from {input_path}")
    if id_column not in df.columns:
        raise UserError(f"predict: id column '{id_column}' missing from {input_path}")
    root = Path(input_path).resolve().parent
    feats: dict[str, np.ndarray] = {}
    for f in inputs:
        col = df[f["name"]]
        if f["role"] == "numeric":
            values = pd.to_numeric(col, errors="coerce")
            bad = values.isna() & col.notna()
            if bad.any():
                raise UserError(f"predict: column {f['name']} has non-numeric value {col[bad].iloc[0]!r}")
            feats[f["name"]] = values.to_numpy(dtype="float32")
        elif f["role"] == "image":
            paths = col.astype("string").fillna("").astype(str)
            full = [str(p if Path(p).is_absolute() else root / p) for p in paths]
            gone = [p for p in full if not Path(p).is_file()]
            if gone:
                raise UserError(f"predict: {len(gone)} image file(s) not found, e.g. {gone[0]}")
            feats[f["name"]] = np.array(full, dtype=object)
        else:
            feats[f["name"]] = col.astype("string").fillna("").astype(str).to_numpy(dtype=object)
    image = next((f["name"] for f in inputs if f["role"] == "image"), None)
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    ds = tf.data.Dataset.from_tensor_slices(feats)
    if image:
        ds = ds.map(lambda x: {**x, image: tf.io.read_file(x[image])}, num_parallel_calls=tf.data.AUTOTUNE)
    prices = [serve(**batch)["price"].numpy() for batch in ds.batch(batch_size).prefetch(2)]
    out = pd.DataFrame({id_column: df[id_column], card.get("target", "price"): np.concatenate(prices) if prices else []})
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    out.to_csv(tmp, index=False)
    tmp.replace(output)
    log.info("event=predicted rows=%d model=%s output=%s", len(out), version, output)
    return len(out)
