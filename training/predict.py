"""Batch prediction over a table with the newest exported version of a model.

The table's columns are the model card's inputs; image paths are relative to the table's folder
(or absolute). The output (id and predicted price) is written to a temporary file, then renamed.
The id column is the one the model was trained with (its card's `config.data.id`) unless named.
`prices` is the one path from a frame to the SavedModel's prices (the evaluation uses it too).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.files import atomic_write_text, newest
from training.config import UserError
from training.data.table import PHOTO_SEPARATOR, photo_list, read_table, text_column

log = logging.getLogger(__name__)


def prices(version_dir: str | Path, card: dict[str, Any], frame: pd.DataFrame, batch_size: int = 256) -> np.ndarray:
    """Prices (float64, one per row) from an exported version's serving signature.

    `frame` holds the card's inputs ready for the signature: numbers, strings, and for the photos
    their files' paths, joined by ';' (read here, a batch at a time, and passed as the files'
    bytes: one per slot, "" in an empty one, for a card with `max_photos`; one per row otherwise).
    """
    import tensorflow as tf

    feats: dict[str, np.ndarray] = {}
    image, slots = None, None
    for f in card["inputs"]:
        name = f["name"]
        if f["role"] == "numeric":
            feats[name] = frame[name].to_numpy(dtype="float32")
        elif f["role"] == "image":
            image, slots = name, f.get("max_photos")
        else:
            feats[name] = frame[name].astype(str).to_numpy(dtype=object)
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    photos = frame[image].astype(str).tolist() if image else []
    out = []
    for start in range(0, len(frame), batch_size):
        batch = {k: tf.constant(v[start : start + batch_size]) for k, v in feats.items()}
        if image:
            batch[image] = tf.constant(_photo_bytes(photos[start : start + batch_size], slots))
        out.append(serve(**batch)["price"].numpy().reshape(-1))
    return np.concatenate(out).astype("float64") if out else np.zeros(0)


def _photo_bytes(cells: list[str], slots: int | None) -> list:
    """Each row's photo files as bytes: [rows, slots] padded with b"", or [rows] (one photo) without slots."""
    rows = [[Path(p).read_bytes() for p in photo_list(cell)] for cell in cells]
    if slots is None:
        return [r[0] if r else b"" for r in rows]
    return [r[:slots] + [b""] * (slots - len(r[:slots])) for r in rows]


def card_id_column(card: dict[str, Any]) -> str:
    """The id column of the model's training data (`id` for a card without its config)."""
    return card.get("config", {}).get("data", {}).get("id") or "id"


def _input(f: dict[str, Any], col: pd.Series, root: Path, optional: bool = False) -> pd.Series:
    """One raw input column as the signature takes it; a bad value is a one-line UserError."""
    if f["role"] == "numeric":
        values = pd.to_numeric(col, errors="coerce")
        bad = values.isna() & col.notna()
        if bad.any():
            raise UserError(f"predict: column {f['name']} has non-numeric value {col[bad].iloc[0]!r}")
        return pd.Series(values.to_numpy(dtype="float32"), index=col.index)
    if f["role"] == "image":
        cells = [[p if Path(p).is_absolute() else str(root / p) for p in photo_list(c)] for c in text_column(col)]
        gone = [p for paths in cells for p in paths if not Path(p).is_file()]
        if gone:
            raise UserError(f"predict: {len(gone)} image file(s) not found, e.g. {gone[0]}")
        if not optional and any(not paths for paths in cells):
            raise UserError(f"predict: column {f['name']} has a row without a photo, which this model needs")
        return pd.Series([PHOTO_SEPARATOR.join(paths) for paths in cells], index=col.index)
    return text_column(col)


def _require(card: dict[str, Any], df: pd.DataFrame, id_column: str, source: str | Path) -> None:
    missing = [f["name"] for f in card["inputs"] if f["name"] not in df.columns]
    if missing:
        raise UserError(f"predict: column(s) {', '.join(missing)} missing from {source}")
    if id_column not in df.columns:
        raise UserError(f"predict: id column '{id_column}' missing from {source} (name another with --id-column)")


def model_inputs(card: dict[str, Any], df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The card's inputs from a raw table (image paths relative to `root`), checked, as `prices` takes them."""
    optional = bool(card.get("missing"))  # a model that prices incomplete listings takes a row without a photo
    return pd.DataFrame({f["name"]: _input(f, df[f["name"]], root, optional) for f in card["inputs"]}, index=df.index)


def _write(out: pd.DataFrame, output: Path) -> None:
    atomic_write_text(output, out.to_csv(index=False))


def predict_table(
    model: str | Path,
    input_path: str | Path,
    output: str | Path,
    id_column: str | None = None,
    batch_size: int = 256,
) -> int:
    """Predict every row of `input_path`; write `<id>,<target>` to `output`. Returns the row count.

    `id_column` None: the id column of the model's training config.
    """
    try:
        version = newest(model)
    except FileNotFoundError as e:
        raise UserError(f"predict: {e}") from None
    card = json.loads((version / "model_card.json").read_text())
    id_column = id_column or card_id_column(card)
    df = read_table(input_path, where="predict", what="input table")
    _require(card, df, id_column, input_path)
    frame = model_inputs(card, df, Path(input_path).resolve().parent)
    price = prices(version, card, frame, batch_size).astype("float32")  # float32: what the signature returns
    out = pd.DataFrame({id_column: df[id_column], card.get("target", "price"): price})
    _write(out, Path(output))
    log.debug("event=predicted rows=%d model=%s output=%s", len(out), version, output)  # the CLI prints it
    return len(out)
