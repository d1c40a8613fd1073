"""Table loading and checks, and the train/valid/test split of each row."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from training.config import Config, UserError

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


@dataclass
class Table:
    """The checked table, with resolved image paths and the split of each row."""

    frame: pd.DataFrame
    fingerprint: dict
    dropped: dict[str, int] = field(default_factory=dict)

    def part(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["__split"] == split]


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"data: table {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, keep_default_na=True, low_memory=False)
    except Exception as e:  # noqa: BLE001 - any parser failure is the user's file
        raise UserError(f"data: cannot read {path}: {str(e).splitlines()[0]}") from None


def hash_split(ids: pd.Series) -> pd.Series:
    """train/valid/test from sha256(id) % 10: 0 -> test, 1 -> valid, else train."""

    def one(v: object) -> str:
        h = int(hashlib.sha256(str(v).encode()).hexdigest(), 16) % 10
        return "test" if h == 0 else "valid" if h == 1 else "train"

    return ids.map(one)


def _image_ok(path: str) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - unreadable for any reason
        return False


def load_table(cfg: Config, check_images: bool = True, require_target: bool = True) -> Table:
    """Read the table, check columns and types, drop (or refuse) bad rows, and split."""
    d = cfg.data
    path = cfg.table_path()
    raw = _read(path)
    if cfg.train.max_rows:
        raw = raw.head(cfg.train.max_rows)
    if raw.empty:
        raise UserError(f"data: table {path} has no rows")
    needed = [d.id, *cfg.feature_columns()] + ([d.target] if require_target else [])
    needed += [d.split] if d.split else []
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise UserError(f"data: column(s) {', '.join(missing)} not in {path.name} (has: {', '.join(map(str, raw.columns[:30]))})")
    df = pd.DataFrame({d.id: raw[d.id].astype(str)})
    if df[d.id].duplicated().any():
        dup = df[d.id][df[d.id].duplicated()].iloc[0]
        raise UserError(f"data: column {d.id} must be unique, '{dup}' repeats")
    for c in [*d.categorical, *d.text]:
        df[c] = raw[c].astype("string").fillna("").astype(str)
    for c in d.numeric:
        values = pd.to_numeric(raw[c], errors="coerce")
        bad = values.isna() & raw[c].notna()
        if bad.any():
            raise UserError(f"data: numeric column {c} has non-numeric values, e.g. {raw[c][bad].iloc[0]!r} (row {int(np.argmax(bad))})")
        df[c] = values.astype("float32")
    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=raw.index)
    if require_target:
        target = pd.to_numeric(raw[d.target], errors="coerce")
        bad_target = ~(np.isfinite(target) & (target > 0))
        dropped["bad_target"] = int(bad_target.sum())
        keep &= ~bad_target
        df[d.target] = target.astype("float64")
    if d.image:
        root = cfg.images_root()
        paths = raw[d.image].astype("string").fillna("").astype(str)
        full = paths.map(lambda p: str(p if Path(p).is_absolute() else root / p) if p else "")
        ok = full.map(lambda p: bool(p) and Path(p).is_file())
        if check_images:
            ok &= full.where(ok, "").map(lambda p: bool(p) and _image_ok(p))
        dropped["bad_image"] = int((~ok & keep).sum())
        keep &= ok
        df[d.image] = full
    if d.split:
        split = raw[d.split].astype("string").fillna("").astype(str).str.strip().str.lower()
        wrong = ~split.isin(SPLITS)
        if wrong.any():
            raise UserError(f"data: split column {d.split} must hold train/valid/test, found {split[wrong].iloc[0]!r}")
        df["__split"] = split
    else:
        df["__split"] = hash_split(df[d.id])
    n_bad = sum(dropped.values())
    if n_bad:
        what = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in dropped.items() if v)
        if cfg.train.bad_rows == "fail":
            raise UserError(f"data: {n_bad} bad row(s) in {path.name} ({what}); set train.bad_rows = \"skip\" to drop them")
        log.warning("event=rows_skipped count=%d reasons=%r", n_bad, what)
    df = df[keep.values].reset_index(drop=True)
    if df.empty:
        raise UserError(f"data: no usable rows left in {path.name}")
    if require_target and df["__split"].eq("train").sum() == 0:
        raise UserError("data: the train split is empty")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Table(df, {"rows": int(len(df)), "source_rows": int(len(raw)), "sha256": digest,
                      "table": str(path)}, dropped)


