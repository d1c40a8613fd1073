"""The comparables index, written into the version folder beside the SavedModel.

``write_index(cfg, found, folder)`` writes ``folder/comparables/`` and returns the card's
``comparables`` block (common/card.py, docs/contract.md), which names every file with its sha256:

- ``vectors.npy``: the stored listings' embeddings, float16 [n, dims] (``hnsw.faiss``: the HNSW
  graph over them, when the index is above ``comparables.exact_max``);
- ``prices.npy``: their prices, float64 [n];
- ``listings.json``: ``{"ids": [...], "fields": {column: [...]}}``, only the columns of
  ``comparables.fields`` (text cut to ``max_field_chars``);
- ``thumbnails.bin`` + ``thumbnail_offsets.npy`` (int64 [n + 1]; listing i's JPEG is bytes
  offsets[i]:offsets[i+1], empty when it has none), when ``comparables.thumbnails``.

The folder is written inside the exporter's work folder, so it appears with the version, atomically.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.files import sha256_file
from common.neighbours import HNSW_EF_SEARCH
from training.config import Config
from training.data.table import photo_list
from training.evaluation.comparables import Comparables

log = logging.getLogger(__name__)
FOLDER = "comparables"
METHOD = (
    "embedding: what the model's log price is made of, one dimension per category and text column "
    "(its wide term, as it counts in the log price) and one for the deep part (the rest), each minus "
    "its training mean and times comparables.emphasis; search: the nearest by Euclidean distance "
    "(exact, or an HNSW graph above comparables.exact_max listings); similarity = exp(-distance)"
)


def _field_values(col: pd.Series, limit: int) -> list[Any]:
    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
            return None
        if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
            return float(v)
        text = str(v)
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

    return [one(v) for v in col.tolist()]


def thumbnail(path: str, size: int) -> bytes | None:
    """A JPEG of at most ``size`` px on its longest side, or None if the photo does not open."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            img = img.convert("RGB")
            img.thumbnail((size, size))
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (OSError, ValueError):
        return None


def _thumbnails(cfg: Config, stored: pd.DataFrame, folder: Path) -> dict[str, Any]:
    c, image = cfg.comparables, cfg.data.image
    cap = int(c.thumbnail_max_mb * 1024 * 1024)
    offsets = np.zeros(len(stored) + 1, dtype=np.int64)
    total, made, started = 0, 0, time.time()
    paths = [next(iter(photo_list(cell)), "") for cell in stored[image].astype(str)]  # the first photo
    with open(folder / "thumbnails.bin", "wb") as out:
        for i, path in enumerate(paths):
            jpeg = thumbnail(path, c.thumbnail_size) if path and total < cap else None
            if jpeg is not None and total + len(jpeg) <= cap:
                out.write(jpeg)
                total += len(jpeg)
                made += 1
            offsets[i + 1] = total
            if (i + 1) % 2000 == 0 or i + 1 == len(paths):
                log.info(
                    "event=thumbnails done=%d of=%d bytes=%d seconds=%.0f",
                    i + 1,
                    len(paths),
                    total,
                    time.time() - started,
                )
    if made < len(paths):
        log.warning(
            "event=thumbnails_missing listings=%d without=%d reason=%s",
            len(paths),
            len(paths) - made,
            "over comparables.thumbnail_max_mb, or a photo that does not open",
        )
    np.save(folder / "thumbnail_offsets.npy", offsets, allow_pickle=False)
    return {"format": "jpeg", "size": c.thumbnail_size, "count": made, "bytes": total}


def write_index(cfg: Config, found: Comparables, folder: Path) -> dict[str, Any]:
    """Write ``folder/comparables/``; return the card's ``comparables`` block."""
    c, d = cfg.comparables, cfg.data
    target = folder / FOLDER
    target.mkdir(parents=True, exist_ok=False)
    stored = found.stored
    names = found.neighbours.save(target)
    np.save(target / "prices.npy", stored[d.target].to_numpy(dtype="float64"), allow_pickle=False)
    listings = {
        "ids": stored[d.id].astype(str).tolist(),
        "fields": {f: _field_values(stored[f], c.max_field_chars) for f in c.fields},
    }
    (target / "listings.json").write_text(json.dumps(listings, ensure_ascii=False, allow_nan=False))
    names += ["prices.npy", "listings.json"]
    block: dict[str, Any] = {
        "method": METHOD,
        "output": "embedding",
        "folder": FOLDER,
        "count": len(stored),
        "dim": found.neighbours.dim,
        "dimensions": found.dimensions,
        "metric": found.neighbours.metric,
        "search": found.neighbours.search_kind,
        "ef_search": HNSW_EF_SEARCH,
        "fields": list(c.fields),
        "default_k": c.k,
        "splits": ["train", "valid"],
    }
    if c.thumbnails and d.image:
        block["thumbnails"] = _thumbnails(cfg, stored, target)
        names += ["thumbnails.bin", "thumbnail_offsets.npy"]
    block["files"] = {name: sha256_file(target / name) for name in names}
    return block


__all__ = ["FOLDER", "METHOD", "thumbnail", "write_index"]
