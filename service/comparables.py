"""The comparables index of a model version: loaded with it, searched inside the micro-batcher's
call, answered as ``comparables`` beside each price, and the thumbnails' bytes.

``load_index(path, block)`` reads ``<version>/comparables/`` as the card's ``comparables`` block
describes it (common/card.py ``ComparablesIndex``, docs/contract.md). Every file's sha256 must
match the card's and every array its declared shape: a broken index raises ``ValueError`` and the
registry refuses the whole version, like a broken SavedModel. The index is read-only once loaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.card import ComparablesIndex
from common.files import sha256_file
from common.neighbours import Neighbours

MAX_K = 20  # the most comparables one answer can ask for (?comparables=0..20)


@dataclass
class Index:
    """A loaded comparables index."""

    neighbours: Neighbours
    ids: list[str]
    prices: np.ndarray
    fields: dict[str, list[Any]]
    default_k: int
    output: str
    thumbnails: bytes | None = None
    offsets: np.ndarray | None = None
    position: dict[str, int] | None = None  # id -> row, for the thumbnails

    def search(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.neighbours.search(embeddings, k)

    def answer(self, rows: np.ndarray, similarities: np.ndarray, version: int) -> list[dict[str, Any]]:
        """One query's comparables, most similar first."""
        out = []
        for row, sim in zip(rows.tolist(), similarities.tolist(), strict=True):
            if row < 0:  # HNSW found fewer than k
                continue
            item: dict[str, Any] = {
                "id": self.ids[row],
                "price": round(float(self.prices[row]), 2),
                "similarity": round(min(1.0, max(0.0, float(sim))), 4),
                "fields": {name: values[row] for name, values in self.fields.items()},
            }
            if self.has_thumbnail(row):
                item["thumbnail"] = f"v1/comparables/{self.ids[row]}/thumbnail?version={version}"
            out.append(item)
        return out

    def has_thumbnail(self, row: int) -> bool:
        return self.offsets is not None and int(self.offsets[row + 1]) > int(self.offsets[row])

    def thumbnail(self, listing_id: str) -> bytes | None:
        """The JPEG of a stored listing, or None (no such id, or no thumbnail)."""
        if self.thumbnails is None or self.offsets is None or self.position is None:
            return None
        row = self.position.get(listing_id)
        if row is None or not self.has_thumbnail(row):
            return None
        return self.thumbnails[int(self.offsets[row]) : int(self.offsets[row + 1])]


def _checked(folder: Path, block: ComparablesIndex) -> None:
    for name, expected in block.files.items():
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise ValueError(f"comparables/{name} is missing")
        if sha256_file(path) != expected:
            raise ValueError(f"comparables/{name} does not match its sha256 in the model card")


def _array(folder: Path, name: str, shape: Sequence[int], kind: str) -> np.ndarray:
    value = np.load(folder / name, allow_pickle=False)
    if value.shape != tuple(shape) or value.dtype.kind != kind:
        raise ValueError(f"comparables/{name} is {value.dtype}{list(value.shape)}, expected {kind} {list(shape)}")
    return value


def load_index(version_dir: Path, block: ComparablesIndex) -> Index:
    """The version's comparables index, checked against its card. Raises ValueError."""
    folder = version_dir / block.folder
    _checked(folder, block)
    n = block.count
    neighbours = Neighbours.load(folder, block.search, block.ef_search, block.metric)
    if neighbours.size != n or neighbours.dim != block.dim:
        raise ValueError(f"comparables: {neighbours.size} x {neighbours.dim} vectors, the card says {n} x {block.dim}")
    prices = _array(folder, "prices.npy", (n,), "f")
    if not np.isfinite(prices).all():
        raise ValueError("comparables/prices.npy holds non-finite prices")
    listings = json.loads((folder / "listings.json").read_text(encoding="utf-8"))
    ids = listings.get("ids") if isinstance(listings, dict) else None
    fields = listings.get("fields") if isinstance(listings, dict) else None
    if not isinstance(ids, list) or len(ids) != n or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"comparables/listings.json must hold {n} string ids")
    if not isinstance(fields, dict) or set(fields) != set(block.fields):
        raise ValueError(f"comparables/listings.json must hold exactly the fields {block.fields}")
    for name, values in fields.items():
        if not isinstance(values, list) or len(values) != n:
            raise ValueError(f"comparables/listings.json field {name!r} must hold {n} values")
        if any(
            not (v is None or isinstance(v, str) or (isinstance(v, float | int) and math.isfinite(v))) for v in values
        ):
            raise ValueError(f"comparables/listings.json field {name!r} holds a value that is not text or a number")
    index = Index(neighbours, ids, prices, {f: fields[f] for f in block.fields}, block.default_k, block.output)
    if block.thumbnails is not None:
        offsets = _array(folder, "thumbnail_offsets.npy", (n + 1,), "i")
        data = (folder / "thumbnails.bin").read_bytes()
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or int(offsets[-1]) != len(data):
            raise ValueError("comparables/thumbnail_offsets.npy does not match thumbnails.bin")
        index.thumbnails, index.offsets = data, offsets
        index.position = {listing: row for row, listing in enumerate(ids)}
    return index


__all__ = ["MAX_K", "Index", "load_index"]
