"""The tf.data input pipeline over a checked table.

It streams: the table's columns (strings and numbers) are sliced from memory, while each photo is
read from its file and decoded in parallel inside tf.data, a batch at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import Config
from training.data.images import decode_image


def raw_features(cfg: Config, df: pd.DataFrame, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """The model's raw inputs as arrays (image: the file path, read later), only `columns` if given."""
    d = cfg.data
    out: dict[str, np.ndarray] = {}
    for c in [*d.categorical, *d.text]:
        out[c] = df[c].to_numpy(dtype=object).astype(str)
    for c in d.numeric:
        out[c] = df[c].to_numpy(dtype="float32")
    if d.image:
        out[d.image] = df[d.image].to_numpy(dtype=object).astype(str)
    return {k: v for k, v in out.items() if columns is None or k in columns}


def make_dataset(cfg: Config, df: pd.DataFrame, training: bool, decode: bool = True,
                 batch_size: int | None = None, with_target: bool = True,
                 columns: list[str] | None = None, cache: str | None = None,
                 shard: tuple[int, int] | None = None, repeat: bool = False) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline over `df`.

    With `decode`, the image feature is the decoded, resized uint8 photo (what the training model
    takes); without it, the encoded file bytes (what the exported model takes). `columns` keeps
    only a model's inputs. `cache` names a file prefix where decoded examples are kept on disk
    after the first epoch, so later epochs (and ablations sharing the file) skip the JPEG decoding
    while memory stays bounded by the shuffle buffer. `shard=(n, i)` keeps every n-th row from
    the i-th, before any photo is read (a worker's share under multi-worker training; tf.distribute's
    own sharding is switched off), and `repeat` makes the training stream endless, so that every
    worker runs the same number of steps per epoch.
    """
    d = cfg.data
    feats = raw_features(cfg, df, None if cache else columns)
    if with_target:
        y = np.log(df[d.target].to_numpy(dtype="float64")).astype("float32")
        ds = tf.data.Dataset.from_tensor_slices((feats, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((feats,))
    if shard is not None:
        ds = ds.shard(*shard)
    size = cfg.model.image_size

    def load(x, *y):
        if d.image in x:
            x = dict(x)
            data = tf.io.read_file(x[d.image])
            x[d.image] = decode_image(data, size) if decode else data
        return (x, *y)

    def keep(x, *y):
        return ({k: v for k, v in x.items() if k in columns}, *y)

    shuffle = min(len(df), cfg.train.shuffle_buffer)
    if cache:
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache(cache)
        if columns is not None:
            ds = ds.map(keep)
        if training:
            ds = ds.shuffle(shuffle, seed=cfg.train.seed, reshuffle_each_iteration=True)
    else:
        if training:  # shuffle the light rows, then read and decode photos in parallel
            ds = ds.shuffle(shuffle, seed=cfg.train.seed, reshuffle_each_iteration=True)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size or cfg.train.batch_size)
    if not with_target:
        ds = ds.map(lambda x: x)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
