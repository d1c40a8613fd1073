"""Sharded input for large data: the checked table and its photos in N TFRecord files per split.

`make shards CONFIG=... SHARDS=N` writes `<split>-<i>-of-<N>.tfrecord` (one `tf.train.Example`
per row: the id, every input column, the log price and the photo's encoded file bytes) and a
small `manifest.json` (files, row counts, the table's sha256, the rows dropped as unreadable).
Rows are shuffled with a fixed seed before they are cut into files, so every file is a random
sample. Training with `data.shards` set reads the train and valid splits from the files, several
files interleaved; under multi-worker training each worker reads only its own train files
(`AutoShardPolicy.FILE`). The table's columns (not its photos) are still read for the
vocabularies, the wide path's Ridge solution and the chief's evaluation.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from common.files import atomic_write_text
from training.config import Config, UserError
from training.data.dataset import PHOTO_MASK, _dropper, _reader
from training.data.table import SPLITS, Table, load_table, photo_list

log = logging.getLogger(__name__)
LOG_TARGET = "__log_price"
FORMAT = 2  # 2: a row holds its photos as a list (0 to model.max_photos files)


def _bytes(values: list[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def _example(cfg: Config, row: dict[str, Any], log_price: float, image: list[bytes] | None) -> bytes:
    d = cfg.data
    feats = {d.id: _bytes([str(row[d.id]).encode()]), LOG_TARGET: _float(log_price)}
    for c in [*d.categorical, *d.text]:
        feats[c] = _bytes([str(row[c]).encode()])
    for c in d.numeric:
        feats[c] = _float(float(row[c]))  # NaN (missing) survives as a float
    if image is not None:
        feats[d.image] = _bytes(image)
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def write_shards(cfg: Config, n: int, out: str | Path) -> Path:
    """Write the table's rows and photos as n TFRecord files per split; returns the manifest path."""
    if n < 1:
        raise UserError("shards: the number of shards must be at least 1")
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.tfrecord"):
        old.unlink()
    table = load_table(cfg)
    d = cfg.data
    frame = table.frame
    splits: dict[str, Any] = {}
    for split in SPLITS:
        part = frame[frame["__split"] == split]
        part = part.iloc[np.random.default_rng(cfg.train.seed).permutation(len(part))]
        log_price = np.log(part[d.target].to_numpy(dtype="float64")).astype("float32")
        records = part.to_dict("records")
        files, rows = [], []
        for i, idx in enumerate(np.array_split(np.arange(len(part)), n)):
            name = f"{split}-{i:05d}-of-{n:05d}.tfrecord"
            with tf.io.TFRecordWriter(str(out / name)) as w:
                for j in idx:
                    row = records[j]
                    image = [Path(p).read_bytes() for p in photo_list(row[d.image])] if d.image else None
                    w.write(_example(cfg, row, float(log_price[j]), image))
            files.append(name)
            rows.append(len(idx))
        splits[split] = {"files": files, "rows": rows}
    manifest = {
        "format": FORMAT,
        "shards": n,
        "table": table.fingerprint["table"],
        "sha256": table.fingerprint["sha256"],
        "max_rows": cfg.train.max_rows,
        "split_column": d.split,
        "columns": _columns(cfg),
        "dropped": table.dropped,
        "photo_fixes": _photo_fixes(cfg, table),
        "splits": splits,
    }
    path = atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    log.info(
        "event=shards path=%s shards=%d rows=%s seconds=%.1f",
        path,
        n,
        {k: sum(v["rows"]) for k, v in splits.items()},
        time.time() - started,
    )
    return path


def _columns(cfg: Config) -> dict[str, list[str] | str]:
    d = cfg.data
    return {"id": d.id, "categorical": d.categorical, "numeric": d.numeric, "text": d.text, "image": d.image}


def _photo_fixes(cfg: Config, table: Table) -> dict[str, str]:
    """id -> its photo paths, for the rows where a photo file exists but does not decode: left out
    of the shards, and of the table that `load_table_for_shards` reads without that check."""
    if not cfg.data.image:
        return {}
    fast = load_table(cfg, check_images=False).frame.set_index(cfg.data.id)[cfg.data.image]
    checked = table.frame.set_index(cfg.data.id)[cfg.data.image]
    differ = checked[fast.reindex(checked.index) != checked]
    return {str(k): str(v) for k, v in differ.items()}


def read_manifest(cfg: Config) -> tuple[dict[str, Any], Path]:
    """The manifest named by `data.shards`, checked against the config and the table."""
    path = Path(cfg.data.shards)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise UserError(f"data.shards: {path} does not exist (make it with `make shards`)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise UserError(
            f"data.shards: {path} has format {manifest.get('format')}, expected {FORMAT}: remake the shards"
        )
    if manifest["columns"] != _columns(cfg):
        raise UserError(f"data.shards: {path} was made for other columns: remake the shards")
    return manifest, path.parent


def load_table_for_shards(cfg: Config) -> tuple[Table, dict[str, Any], Path]:
    """The table's columns without decoding every photo, aligned with the rows in the shards."""
    manifest, folder = read_manifest(cfg)
    table = load_table(cfg, check_images=False)
    if table.fingerprint["sha256"] != manifest["sha256"] or manifest["max_rows"] != cfg.train.max_rows:
        raise UserError(f"data.shards: {folder} was made from another table (or train.max_rows): remake the shards")
    fixes = manifest.get("photo_fixes") or {}
    if fixes:
        ids = table.frame[cfg.data.id]
        table.frame.loc[ids.isin(set(fixes)).values, cfg.data.image] = ids[ids.isin(set(fixes))].map(fixes).values
    for split in SPLITS:
        if len(table.part(split)) != sum(manifest["splits"][split]["rows"]):
            raise UserError(f"data.shards: the {split} split of the table and of {folder} differ: remake the shards")
    return table, manifest, folder


def _spec(cfg: Config) -> dict[str, Any]:
    """How to parse one example: the id, the log price and every input column."""
    d = cfg.data
    spec: dict[str, Any] = {
        d.id: tf.io.FixedLenFeature([], tf.string),
        LOG_TARGET: tf.io.FixedLenFeature([], tf.float32),
    }
    for c in [*d.categorical, *d.text]:
        spec[c] = tf.io.FixedLenFeature([], tf.string)
    for c in d.numeric:
        spec[c] = tf.io.FixedLenFeature([], tf.float32)
    if d.image:
        spec[d.image] = tf.io.VarLenFeature(tf.string)
    return spec


def _shift_table(shift: dict[str, float]) -> tf.lookup.StaticHashTable:
    """id -> offset of its log price (0 for an id not in `shift`)."""
    keys = tf.constant(list(shift.keys()))
    values = tf.constant(np.asarray(list(shift.values()), dtype="float32"))
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), 0.0)


def shard_dataset(
    cfg: Config,
    manifest: dict[str, Any],
    folder: Path,
    split: str,
    training: bool,
    columns: list[str],
    shift: dict[str, float] | None = None,
    repeat: bool = False,
    cache: str | None = None,
    by_file: bool = False,
    input_dropout: float = 0.0,
    batch_size: int | None = None,
) -> tf.data.Dataset:
    """A batched tf.data pipeline over one split's shards, files read interleaved.

    `shift` adds a per-id offset to the log price (the wide path's out-of-fold correction, of the
    complete pattern: input dropout on shards does not switch it per pattern);
    `input_dropout` and `batch_size` (None: train.batch_size) as in `training.data.dataset.Stream`;
    `by_file` asks tf.distribute to give each worker its own files (`AutoShardPolicy.FILE`),
    otherwise every worker reads every file (what validation wants).
    """
    d = cfg.data
    rows = manifest["splits"][split]["rows"]
    files = [str(folder / f) for f, n in zip(manifest["splits"][split]["files"], rows, strict=True) if n]
    spec = _spec(cfg)
    table = _shift_table(shift) if shift else None
    slots = cfg.model.max_photos
    decode = _reader(cfg, decode=True)

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        y = ex[LOG_TARGET] + (table.lookup(ex[d.id]) if table is not None else 0.0)
        x = {c: ex[c] for c in columns if c not in (d.image, PHOTO_MASK)}
        if d.image in columns:  # the photos' bytes, padded to the slots with "" (empty)
            photos = tf.sparse.to_dense(ex[d.image], default_value="")[:slots]
            photos = tf.pad(photos, [[0, slots - tf.shape(photos)[0]]], constant_values="")
            photos.set_shape((slots,))
            x[PHOTO_MASK] = tf.cast(tf.strings.length(photos) > 0, tf.float32)
            x[d.image] = decode({d.image: photos}, bytes_in=True)[0][d.image]
        return x, y

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=cfg.train.seed)
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(4, len(files)),
        block_length=16,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if cache:
        ds = ds.cache(cache)
    if training:
        ds = ds.shuffle(min(sum(rows), cfg.train.shuffle_buffer), seed=cfg.train.seed, reshuffle_each_iteration=True)
    if training and input_dropout > 0:
        ds = ds.map(_dropper(cfg, input_dropout), num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size or cfg.train.batch_size).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.FILE if by_file else tf.data.experimental.AutoShardPolicy.OFF
    )
    return ds.with_options(options)
