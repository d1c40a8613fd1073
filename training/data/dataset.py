"""The tf.data input pipeline over a checked table.

It streams: the table's columns (strings and numbers) are sliced from memory, while each photo is
read from its file and decoded in parallel inside tf.data, a batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import Config
from training.data.images import decode_image

# A frame column with each row's precomputed photo features (a frozen pretrained backbone's, set by
# training.features.photo): where it is present, the training model is fed these instead of pixels.
PHOTO_FEATURES = "__photo_features"


def raw_features(
    cfg: Config, df: pd.DataFrame, columns: list[str] | None = None, photo_features: bool = False
) -> dict[str, np.ndarray]:
    """The model's raw inputs as arrays, only `columns` if given.

    The image is the file path (read later), or with `photo_features` the row's precomputed features.
    """
    d = cfg.data
    out: dict[str, np.ndarray] = {}
    for c in [*d.categorical, *d.text]:
        out[c] = df[c].to_numpy(dtype=object).astype(str)
    for c in d.numeric:
        out[c] = df[c].to_numpy(dtype="float32")
    if d.image and photo_features:
        values = df[PHOTO_FEATURES].to_numpy()
        out[d.image] = np.stack(values).astype("float32") if len(values) else np.zeros((0, 1280), "float32")
    elif d.image:
        out[d.image] = df[d.image].to_numpy(dtype=object).astype(str)
    return {k: v for k, v in out.items() if columns is None or k in columns}


@dataclass(frozen=True)
class Stream:
    """How `stream` turns a frame into batches.

    With `decode`, the image feature is the decoded, resized uint8 photo (what the training model
    takes); without it, the encoded file bytes (what the exported model takes). `columns` keeps
    only a model's inputs. `cache` names a file prefix where decoded examples are kept on disk
    after the first epoch, so later epochs (and ablations sharing the file) skip the JPEG decoding
    while memory stays bounded by the shuffle buffer. `shard=(n, i)` keeps every n-th row from
    the i-th, before any photo is read (a worker's share under multi-worker training; tf.distribute's
    own sharding is switched off), and `repeat` makes the training stream endless, so that every
    worker runs the same number of steps per epoch. `batch_size` None: train.batch_size.
    """

    training: bool
    decode: bool = True
    batch_size: int | None = None
    with_target: bool = True
    columns: list[str] | None = None
    cache: str | None = None
    shard: tuple[int, int] | None = None
    repeat: bool = False


def make_dataset(cfg: Config, df: pd.DataFrame, training: bool, **options: Any) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline over `df`; `options` are the other fields of `Stream`."""
    return stream(cfg, df, Stream(training, **options))


def stream(cfg: Config, df: pd.DataFrame, s: Stream) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline over `df`, as `s` says."""
    ds = _slices(cfg, df, s)
    ds = _cached(cfg, df, ds, s) if s.cache else _streamed(cfg, df, ds, s)
    if s.repeat:
        ds = ds.repeat()
    ds = ds.batch(s.batch_size or cfg.train.batch_size)
    if not s.with_target:
        ds = ds.map(lambda x: x)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _slices(cfg: Config, df: pd.DataFrame, s: Stream) -> tf.data.Dataset:
    """One element per row: (features,) or (features, log price); a cache keeps every column."""
    feats = raw_features(cfg, df, None if s.cache else s.columns, photo_features=_features(df, s))
    if s.with_target:
        y = np.log(df[cfg.data.target].to_numpy(dtype="float64")).astype("float32")
        ds = tf.data.Dataset.from_tensor_slices((feats, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((feats,))
    return ds.shard(*s.shard) if s.shard is not None else ds


def _features(df: pd.DataFrame, s: Stream) -> bool:
    """Is the photo fed as precomputed features? (Never for the encoded bytes an exported model takes.)"""
    return s.decode and PHOTO_FEATURES in df.columns


def _reader(cfg: Config, decode: bool, features: bool = False):
    """Element -> the same element with the photo read from its file (and decoded); features pass as they are."""
    image, size = cfg.data.image, cfg.model.image_size

    def load(x, *y):
        if image in x and not features:
            x = dict(x)
            data = tf.io.read_file(x[image])
            x[image] = decode_image(data, size) if decode else data
        return (x, *y)

    return load


def _shuffle(cfg: Config, df: pd.DataFrame, ds: tf.data.Dataset) -> tf.data.Dataset:
    buffer = min(len(df), cfg.train.shuffle_buffer)
    return ds.shuffle(buffer, seed=cfg.train.seed, reshuffle_each_iteration=True)


def _cached(cfg: Config, df: pd.DataFrame, ds: tf.data.Dataset, s: Stream) -> tf.data.Dataset:
    """Read and decode every photo once into the cache file, then keep the columns and shuffle."""
    ds = ds.map(_reader(cfg, s.decode, _features(df, s)), num_parallel_calls=tf.data.AUTOTUNE).cache(s.cache)
    if s.columns is not None:
        columns = s.columns
        ds = ds.map(lambda x, *y: ({k: v for k, v in x.items() if k in columns}, *y))
    return _shuffle(cfg, df, ds) if s.training else ds


def _streamed(cfg: Config, df: pd.DataFrame, ds: tf.data.Dataset, s: Stream) -> tf.data.Dataset:
    """Shuffle the light rows, then read and decode photos in parallel."""
    if s.training:
        ds = _shuffle(cfg, df, ds)
    return ds.map(
        _reader(cfg, s.decode, _features(df, s)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=not s.training
    )
