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
from training.data.table import photo_list

# A frame column with each row's precomputed photo features (a frozen pretrained backbone's, set by
# training.features.photo), [max_photos, width] per row, zeros in an empty slot: where it is
# present, the training model is fed these instead of pixels.
PHOTO_FEATURES = "__photo_features"
# The training model's input saying which photo slots hold a photo (1.0) and which are empty (0.0);
# the exported model derives it from the request's strings ("" is an empty slot).
PHOTO_MASK = "__photo_mask"
# A training stream's per-row log-price offsets of the wide path's patterns (training/fit/wide.py).
SHIFT = "__shift"


def photo_slots(cfg: Config, cells: np.ndarray) -> np.ndarray:
    """Table cells of ';'-joined photo paths -> a [rows, max_photos] string array, "" in an empty slot."""
    n = cfg.model.max_photos
    out = np.full((len(cells), n), "", dtype=object)
    for i, cell in enumerate(cells):
        paths = photo_list(cell)[:n]
        out[i, : len(paths)] = paths
    return out.astype(str)


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
    if d.image:
        slots = photo_slots(cfg, df[d.image].to_numpy(dtype=object))
        out[PHOTO_MASK] = (slots != "").astype("float32")
        if photo_features:
            values = df[PHOTO_FEATURES].to_numpy()
            width = (cfg.model.max_photos, 1280)
            feats = np.stack(values).astype("float32") if len(values) else np.zeros((0, *width), "float32")
            out[d.image] = feats * out[PHOTO_MASK][:, :, None]  # a removed photo leaves a zero slot
        else:
            out[d.image] = slots
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
    `input_dropout` (training) removes each input group of a row with that chance, at least one
    kept (`drop_inputs`), in `copies` copies of each row (None: train.input_dropout_copies), after
    the row itself unless `copies_only`; `shift` [rows, 3] are the log-price offsets of the wide path's patterns
    (metadata + text, metadata, text) added to a row's target for the pattern it is left with.
    """

    training: bool
    decode: bool = True
    batch_size: int | None = None
    with_target: bool = True
    columns: list[str] | None = None
    cache: str | None = None
    shard: tuple[int, int] | None = None
    repeat: bool = False
    input_dropout: float = 0.0
    shift: np.ndarray | None = None
    copies: int | None = None
    copies_only: bool = False


def make_dataset(cfg: Config, df: pd.DataFrame, training: bool, **options: Any) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline over `df`; `options` are the other fields of `Stream`."""
    return stream(cfg, df, Stream(training, **options))


def stream(cfg: Config, df: pd.DataFrame, s: Stream) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline over `df`, as `s` says."""
    ds = _slices(cfg, df, s)
    ds = _cached(cfg, df, ds, s) if s.cache else _streamed(cfg, df, ds, s)
    copies = cfg.train.input_dropout_copies if s.copies is None else s.copies
    if s.training and s.input_dropout > 0 and copies > 0:
        ds = _with_copies(cfg, ds, s.input_dropout, copies, keep_rows=not s.copies_only)
    elif s.training and (s.input_dropout > 0 or s.shift is not None):
        ds = ds.map(_dropper(cfg, s.input_dropout), num_parallel_calls=tf.data.AUTOTUNE)
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
    if s.shift is not None and not s.cache:  # a cache holds the rows alone: `_cached` adds the shifts after it
        feats[SHIFT] = _shifts(df, s)
    if s.with_target:
        y = np.log(df[cfg.data.target].to_numpy(dtype="float64")).astype("float32")
        ds = tf.data.Dataset.from_tensor_slices((feats, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((feats,))
    return ds.shard(*s.shard) if s.shard is not None else ds


def _shifts(df: pd.DataFrame, s: Stream) -> np.ndarray:
    return np.asarray(s.shift, dtype="float32").reshape(len(df), 3)


def _features(df: pd.DataFrame, s: Stream) -> bool:
    """Is the photo fed as precomputed features? (Never for the encoded bytes an exported model takes.)"""
    return s.decode and PHOTO_FEATURES in df.columns


def _reader(cfg: Config, decode: bool, features: bool = False):
    """Element -> the same element with the photo read from its file (and decoded); features pass as they are."""
    image, size = cfg.data.image, cfg.model.image_size

    def one(path):
        if not decode:
            return tf.cond(tf.strings.length(path) > 0, lambda: tf.io.read_file(path), lambda: tf.constant(""))
        return tf.cond(
            tf.strings.length(path) > 0,
            lambda: decode_image(tf.io.read_file(path), size),
            lambda: tf.zeros((size, size, 3), tf.uint8),
        )

    def from_bytes(data):
        return tf.cond(
            tf.strings.length(data) > 0,
            lambda: decode_image(data, size),
            lambda: tf.zeros((size, size, 3), tf.uint8),
        )

    def load(x, *y, bytes_in=False):
        if image in x and not features:
            x = dict(x)
            spec = tf.TensorSpec((size, size, 3), tf.uint8) if decode else tf.TensorSpec((), tf.string)
            x[image] = tf.map_fn(from_bytes if bytes_in else one, x[image], fn_output_signature=spec)
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
    if s.shift is not None:  # in row order, as the cache is
        shifts = tf.data.Dataset.from_tensor_slices(_shifts(df, s))
        ds = tf.data.Dataset.zip(ds, shifts).map(lambda row, shift: ({**row[0], SHIFT: shift}, *row[1:]))
    return _shuffle(cfg, df, ds) if s.training else ds


def _streamed(cfg: Config, df: pd.DataFrame, ds: tf.data.Dataset, s: Stream) -> tf.data.Dataset:
    """Shuffle the light rows, then read and decode photos in parallel."""
    if s.training:
        ds = _shuffle(cfg, df, ds)
    return ds.map(
        _reader(cfg, s.decode, _features(df, s)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=not s.training
    )


def groups_given(cfg: Config, x: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Which input groups one example gives (bool scalars), for the groups whose columns it has.

    The same rule as the model's `GroupsGiven` layer: metadata, a category not "" or a finite
    number; text, a text not ""; the photo, one slot at least.
    """
    d = cfg.data
    out = {}
    meta = [tf.not_equal(x[c], "") for c in d.categorical if c in x]
    meta += [tf.math.is_finite(x[c]) for c in d.numeric if c in x]
    if meta:
        out["metadata"] = tf.reduce_any(tf.stack(meta))
    text = [tf.not_equal(x[c], "") for c in d.text if c in x]
    if text:
        out["text"] = tf.reduce_any(tf.stack(text))
    if d.image and PHOTO_MASK in x:
        out["image"] = tf.reduce_any(x[PHOTO_MASK] > 0)
    return out


def remove_group(cfg: Config, x: dict[str, tf.Tensor], group: str, drop: tf.Tensor) -> dict[str, tf.Tensor]:
    """One example with `group`'s inputs set missing where `drop` (a bool scalar) is true."""
    d = cfg.data
    x = dict(x)
    if group == "metadata":
        for c in [c for c in d.categorical if c in x]:
            x[c] = tf.where(drop, tf.constant(""), x[c])
        for c in [c for c in d.numeric if c in x]:
            x[c] = tf.where(drop, tf.constant(float("nan")), x[c])
    elif group == "text":
        for c in [c for c in d.text if c in x]:
            x[c] = tf.where(drop, tf.constant(""), x[c])
    elif group == "image" and PHOTO_MASK in x:
        x[PHOTO_MASK] = tf.where(drop, tf.zeros_like(x[PHOTO_MASK]), x[PHOTO_MASK])
        x[d.image] = tf.where(drop, tf.zeros_like(x[d.image]), x[d.image])
    return x


def _dropper(cfg: Config, rate: float, flag: bool = False, draw: int = 0):
    """Input dropout (ModDrop): each given group of an example is removed with chance `rate`, at
    least one kept; then the target takes the wide pattern's shift, if the stream has shifts.
    With `flag`, the example comes with a bool saying whether a group was removed. In such an
    example, `train.text_column_dropout` also removes text columns (`_drop_text_columns`).
    `draw` numbers the copies of one example: each has random draws of its own."""
    seed = cfg.train.seed + 1000 * draw
    columns_rate = cfg.train.text_column_dropout

    def drop(x, *y):
        x = dict(x)
        shift = x.pop(SHIFT, None)
        given = groups_given(cfg, x)
        names = list(given)
        removed = tf.constant(False)
        if rate > 0 and len(names) > 1:
            u = tf.random.uniform((len(names),), seed=seed)
            gone = tf.logical_and(tf.stack([given[g] for g in names]), u < rate)
            left = tf.logical_and(tf.stack([given[g] for g in names]), tf.logical_not(gone))
            gone = tf.logical_and(gone, tf.reduce_any(left))  # never all of them
            removed = tf.reduce_any(gone)
            for i, g in enumerate(names):
                x = remove_group(cfg, x, g, gone[i])
                given[g] = tf.logical_and(given[g], tf.logical_not(gone[i]))
            if columns_rate > 0 and "text" in given:
                x = _drop_text_columns(x, cfg.data.text, columns_rate, tf.logical_and(removed, given["text"]), seed)
        if shift is not None and y:
            meta, text = given.get("metadata", tf.constant(False)), given.get("text", tf.constant(False))
            pattern = tf.where(meta & text, 0, tf.where(meta, 1, 2))
            offset = tf.where(meta | text, tf.gather(shift, pattern), 0.0)
            y = (y[0] + offset, *y[1:])
        return (x, *y, removed) if flag else (x, *y)

    return drop


def _drop_text_columns(
    x: dict[str, tf.Tensor], text: list[str], rate: float, where: tf.Tensor, seed: int
) -> dict[str, tf.Tensor]:
    """Where `where`: each given text column removed with chance `rate`, at least one kept (a
    listing with its title and no description). The text group stays given."""
    cols = [c for c in text if c in x]
    if len(cols) < 2:
        return x
    has = tf.stack([tf.not_equal(x[c], "") for c in cols])
    gone = tf.logical_and(has, tf.random.uniform((len(cols),), seed=seed + 1) < rate)
    gone = tf.logical_and(gone, tf.reduce_any(tf.logical_and(has, tf.logical_not(gone))))  # never all of them
    gone = tf.logical_and(gone, where)
    x = dict(x)
    for i, c in enumerate(cols):
        x[c] = tf.where(gone[i], tf.constant(""), x[c])
    return x


def _with_copies(
    cfg: Config, ds: tf.data.Dataset, rate: float, copies: int = 1, keep_rows: bool = True
) -> tf.data.Dataset:
    """Every example as it is, followed by `copies` copies with input dropout (each its own draw),
    those that removed a group: the complete listings are learnt as without dropout, the subsets
    on top of them. Each example carries a weight in the loss: 1 for the rows as they are,
    train.input_dropout_weight for the copies (their errors are several times larger and would
    otherwise drive the shared network). Without `keep_rows`, the incomplete copies alone."""
    as_is = _dropper(cfg, 0.0, flag=True)
    parts = [_dropper(cfg, rate, flag=True, draw=i) for i in range(copies)]
    weight = float(cfg.train.input_dropout_weight)

    def both(x, *y):
        out = []
        if keep_rows:  # the example as it is, always kept
            a = as_is(x, *y)
            out.append((*a[:-1], tf.constant(1.0), tf.constant(True)))
        for part in parts:
            b = part(x, *y)
            out.append((*b[:-1], tf.constant(weight), b[-1]))
        return tf.nest.map_structure(lambda *v: tf.stack(v), *out)

    def kept(*example):
        return example[-1]

    def unflagged(*example):
        return example[:-1]

    ds = ds.map(both, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    return ds.filter(kept).map(unflagged)
