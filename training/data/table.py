"""Table loading and checks, and the train/valid/test split of each row.

`load_table` runs small steps in order: read the file, check the columns, convert the inputs,
mark bad targets and bad photos, split, drop (or refuse) the bad rows, and fingerprint the file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
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
    photos_left_out: dict[str, int] = field(default_factory=dict)  # missing or unreadable; beyond max_photos

    def part(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["__split"] == split]


def read_table(path: str | Path, where: str = "data", what: str = "table") -> pd.DataFrame:
    """A CSV or Parquet file as read by pandas; a missing or unreadable file is a one-line UserError.

    `where` and `what` start the messages: `data: table x.csv does not exist`.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{where}: {what} {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, keep_default_na=True, low_memory=False)
    except Exception as e:  # noqa: BLE001 - any parser failure is the user's file
        raise UserError(f"{where}: cannot read {path}: {str(e).splitlines()[0]}") from None


def text_column(col: pd.Series) -> pd.Series:
    """Strings, a missing value as ""."""
    return col.astype("string").fillna("").astype(str)


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


def _read(cfg: Config) -> pd.DataFrame:
    raw = read_table(cfg.table_path())
    if cfg.train.max_rows:
        raw = raw.head(cfg.train.max_rows)
    if raw.empty:
        raise UserError(f"data: table {cfg.table_path()} has no rows")
    return raw


def _check_columns(cfg: Config, raw: pd.DataFrame, require_target: bool) -> None:
    d = cfg.data
    needed = [d.id, *cfg.feature_columns()] + ([d.target] if require_target else [])
    needed += [d.split] if d.split else []
    needed += cfg.shown_columns()
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        has = ", ".join(map(str, raw.columns[:30]))
        raise UserError(f"data: column(s) {', '.join(missing)} not in {cfg.table_path().name} (has: {has})")


def _inputs(cfg: Config, raw: pd.DataFrame) -> pd.DataFrame:
    """The id (unique), the categorical and text columns as strings, the numeric ones as float32."""
    d = cfg.data
    df = pd.DataFrame({d.id: raw[d.id].astype(str)})
    if df[d.id].duplicated().any():
        dup = df[d.id][df[d.id].duplicated()].iloc[0]
        raise UserError(f"data: column {d.id} must be unique, '{dup}' repeats")
    for c in [*d.categorical, *d.text]:
        df[c] = text_column(raw[c])
    for c in d.numeric:
        values = pd.to_numeric(raw[c], errors="coerce")
        bad = values.isna() & raw[c].notna()
        if bad.any():
            example = raw[c][bad].iloc[0]
            raise UserError(
                f"data: numeric column {c} has non-numeric values, e.g. {example!r} (row {int(np.argmax(bad))})"
            )
        df[c] = values.astype("float32")
    for c in cfg.shown_columns():  # shown beside a price (comparables.fields), never fed to the model
        df[c] = text_column(raw[c])
    return df


def _target(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The target as float64, and which rows have no finite positive price."""
    target = pd.to_numeric(col, errors="coerce")
    return target.astype("float64"), ~(np.isfinite(target) & (target > 0))


PHOTO_SEPARATOR = ";"


def photo_list(cell: str) -> list[str]:
    """The photo paths of one table cell ("front.jpg;back.jpg"); an empty cell has none."""
    return [p.strip() for p in str(cell).split(PHOTO_SEPARATOR) if p.strip()]


def _images(cfg: Config, col: pd.Series, check: bool) -> tuple[pd.Series, int, int]:
    """Each row's photo files as absolute paths joined by ';' ("" for none); the photos left out
    because their file is missing or (with `check`) does not open, and those beyond model.max_photos.

    A listing without a photo is kept: the model learns to price it from the rest.
    """
    root, limit = cfg.images_root(), cfg.model.max_photos
    bad = extra = 0
    out = []
    for cell in text_column(col):
        kept = []
        for p in photo_list(cell):
            full = str(p if Path(p).is_absolute() else root / p)
            if not Path(full).is_file() or (check and not _image_ok(full)):
                bad += 1
            elif len(kept) == limit:
                extra += 1
            else:
                kept.append(full)
        out.append(PHOTO_SEPARATOR.join(kept))
    return pd.Series(out, index=col.index), bad, extra


def _split(cfg: Config, raw: pd.DataFrame, df: pd.DataFrame) -> pd.Series:
    """The split column's train/valid/test (any case, spaces trimmed), or a split from a hash of the id."""
    d = cfg.data
    if not d.split:
        return hash_split(df[d.id])
    split = text_column(raw[d.split]).str.strip().str.lower()
    wrong = ~split.isin(SPLITS)
    if wrong.any():
        raise UserError(f"data: split column {d.split} must hold train/valid/test, found {split[wrong].iloc[0]!r}")
    return split


def _drop_bad(cfg: Config, df: pd.DataFrame, keep: pd.Series, dropped: dict[str, int]) -> pd.DataFrame:
    """Skip (and count) or refuse the bad rows, as train.bad_rows says."""
    name = cfg.table_path().name
    n_bad = sum(dropped.values())
    if n_bad:
        what = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in dropped.items() if v)
        if cfg.train.bad_rows == "fail":
            raise UserError(f'data: {n_bad} bad row(s) in {name} ({what}); set train.bad_rows = "skip" to drop them')
        log.warning("event=rows_skipped count=%d reasons=%r", n_bad, what)
    df = df[keep.values].reset_index(drop=True)
    if df.empty:
        raise UserError(f"data: no usable rows left in {name}")
    return df


def _left_out_photos(cfg: Config, bad: int, extra: int) -> None:
    """Photos whose file is missing or broken are left out (or, with bad_rows = "fail", refused)."""
    name = cfg.table_path().name
    if bad and cfg.train.bad_rows == "fail":
        raise UserError(
            f'data: {bad} photo file(s) in {name} are missing or do not open; set train.bad_rows = "skip" '
            "to leave them out"
        )
    if bad:
        log.warning("event=photos_left_out count=%d reason=missing_or_unreadable", bad)
    if extra:
        log.warning("event=photos_left_out count=%d reason=more_than_max_photos max=%d", extra, cfg.model.max_photos)


def fingerprint(path: Path, rows: int, source_rows: int) -> dict:
    """What identifies the data a model was trained on: row counts and the file's sha256."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"rows": int(rows), "source_rows": int(source_rows), "sha256": digest, "table": str(path)}


def load_table(cfg: Config, check_images: bool = True, require_target: bool = True) -> Table:
    """Read the table, check columns and types, drop (or refuse) bad rows, and split."""
    d = cfg.data
    raw = _read(cfg)
    _check_columns(cfg, raw, require_target)
    df = _inputs(cfg, raw)
    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=raw.index)
    if require_target:
        df[d.target], bad = _target(raw[d.target])
        dropped["bad_target"] = int(bad.sum())
        keep &= ~bad
    if d.image:
        df[d.image], bad_photos, extra = _images(cfg, raw[d.image], check_images)
        _left_out_photos(cfg, bad_photos, extra)
        left_out = {"bad_photo": bad_photos, "over_max_photos": extra}
    df["__split"] = _split(cfg, raw, df)
    df = _drop_bad(cfg, df, keep, dropped)
    if require_target and df["__split"].eq("train").sum() == 0:
        raise UserError("data: the train split is empty")
    return Table(df, fingerprint(cfg.table_path(), len(df), len(raw)), dropped, left_out if d.image else {})
