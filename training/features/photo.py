"""The photo encoder's backbone, and a frozen pretrained backbone's features computed once per photo.

With `model.image_encoder = "efficientnet_lite*"` and `model.image_trainable_blocks = 0` the
backbone is frozen: its pooled features do not change while the head learns, so they are computed
once per photo per run (`attach_photo_features`), kept in the run's cache folder for `--resume`,
and fed to the full model and every ablation as a float vector per row. The exported model runs the
same `decode_image`, cast and backbone on the request's bytes (`training.model.serving`), so the
features a model was trained on are the features it is served with (the parity test checks it).
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.files import atomic_write_bytes
from training.config import Config, UserError
from training.data.dataset import PHOTO_FEATURES as FEATURES_COLUMN
from training.data.dataset import photo_slots
from training.data.images import decode_image
from training.data.table import Table
from training.features.pretrained import build_efficientnet_lite

log = logging.getLogger(__name__)

BATCH = 32


def pretrained(cfg: Config) -> bool:
    """Does the config ask for an ImageNet-pretrained photo encoder?"""
    return bool(cfg.data.image) and cfg.model.image_encoder != "scratch"


def frozen_features(cfg: Config) -> bool:
    """Is the photo branch fed precomputed features (a frozen pretrained backbone)?"""
    return pretrained(cfg) and cfg.model.image_trainable_blocks == 0


def backbone(cfg: Config) -> keras.Model:
    """The pretrained backbone: float RGB 0..255 [s, s, 3] -> pooled features, with its pinned weights."""
    m = cfg.model
    return build_efficientnet_lite(m.image_encoder, image_size=m.image_size, trainable_blocks=m.image_trainable_blocks)


def feature_width(cfg: Config) -> int:
    return 1280  # every EfficientNet-Lite pools its 1280-channel head


CACHE_PREFIX, CACHE_SUFFIX = "photo-features-", ".npz"  # the run's feature cache files


def _cache_file(cfg: Config, folder: Path) -> Path:
    return folder / f"{CACHE_PREFIX}{cfg.model.image_encoder}-{cfg.model.image_size}{CACHE_SUFFIX}"


def is_feature_cache(path: Path) -> bool:
    """Is `path` a file `attach_photo_features` writes (kept by a failed run for --resume)?"""
    return path.is_file() and path.name.startswith(CACHE_PREFIX) and path.name.endswith(CACHE_SUFFIX)


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return dict(zip(z["paths"].tolist(), z["features"], strict=True))
    except (OSError, ValueError, KeyError) as e:  # a damaged cache is recomputed, not trusted
        log.warning("event=photo_features_cache_ignored path=%s reason=%s", path, type(e).__name__)
        return {}


def _write_cache(path: Path, known: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    names = sorted(known)
    np.savez(buf, paths=np.array(names), features=np.stack([known[p] for p in names]).astype("float32"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def compute_features(cfg: Config, paths: list[str], model: keras.Model | None = None) -> np.ndarray:
    """Pooled backbone features of each photo file, float32 [len(paths), width]; logs its progress."""
    model = model or backbone(cfg)
    size = cfg.model.image_size
    ds = tf.data.Dataset.from_tensor_slices(np.array(paths, dtype=object).astype(str))
    ds = (
        ds.map(
            lambda p: tf.cast(decode_image(tf.io.read_file(p), size), tf.float32), num_parallel_calls=tf.data.AUTOTUNE
        )
        .batch(BATCH)
        .prefetch(2)
    )
    out, done, started, step = [], 0, time.time(), max(1, len(paths) // 10)
    next_log = step
    for batch in ds:
        out.append(model(batch, training=False).numpy())
        done += len(out[-1])
        if done >= next_log or done == len(paths):
            rate = done / max(time.time() - started, 1e-9)
            log.info("event=photo_features done=%d total=%d photos_per_second=%.1f", done, len(paths), rate)
            next_log += step
    return np.concatenate(out).astype("float32") if out else np.zeros((0, feature_width(cfg)), "float32")


def attach_photo_features(cfg: Config, table: Table, cache_folder: Path) -> dict[str, float]:
    """Add each row's backbone features to `table.frame` (column FEATURES_COLUMN); returns the pass's cost.

    Each distinct photo file is encoded once; features already in the run's cache file are reused.
    """
    frame = table.frame
    slots = photo_slots(cfg, frame[cfg.data.image].to_numpy(dtype=object))
    paths = [p for p in slots.reshape(-1).tolist() if p]
    cache = _cache_file(cfg, cache_folder)
    known = _read_cache(cache)
    todo = sorted(set(paths) - set(known))
    started = time.time()
    if todo:
        log.info(
            "event=photo_features_start encoder=%s size=%d photos=%d cached=%d",
            cfg.model.image_encoder,
            cfg.model.image_size,
            len(todo),
            len(known),
        )
        known.update(zip(todo, compute_features(cfg, todo), strict=True))
        _write_cache(cache, known)
    seconds = time.time() - started
    missing = [p for p in paths if p not in known]
    if missing:
        raise UserError(f"data: no photo features for {missing[0]}")
    empty = np.zeros(feature_width(cfg), "float32")
    frame[FEATURES_COLUMN] = [np.stack([known[p] if p else empty for p in row]) for row in slots.tolist()]
    return {
        "photos": len(todo),
        "seconds": round(seconds, 1),
        "photos_per_second": round(len(todo) / seconds, 1) if todo and seconds > 0 else None,
    }
