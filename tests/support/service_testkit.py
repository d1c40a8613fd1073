"""Helpers of the service tests: tiny SavedModels that follow docs/contract.md, settings, waiting,
test images and a live uvicorn server for the browser test (imported as
``tests.support.service_testkit``; the robustness tests use them too).

The models are small Keras functional models with the contract's signature (one rank-1 input per
field, the image as encoded bytes decoded inside the graph, a dict output with ``price``), exported
with ``model.export(..., format="tf_saved_model")``; they are not trained (the service does not
care), but their price depends on every input so the parity tests mean something.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image

from harness import models
from harness.server import ThreadServer
from service.main import create_app
from service.settings import Settings

__all__ = [
    "BY_INPUTS", "DEFAULT_INPUTS", "EXPLAIN_BLOCK", "GOOD_ITEM", "INTERVAL_BLOCK", "MYNTRA_INPUTS", "NEUTRAL",
    "RANGE_QUANTILES", "SUBSET_INTERVAL_BLOCK", "LiveServer", "build_model", "edit_card", "grey_png", "image_bytes",
    "install_version", "make_settings", "missing_block", "signature_feeds", "wait_ready", "wait_until", "with_blocks",
]  # fmt: skip

DEFAULT_INPUTS: list[dict[str, Any]] = [
    {"name": "brand", "role": "categorical", "vocabulary": ["zara", "h&m", "nike", "levis"]},
    {"name": "category", "role": "categorical", "vocabulary": ["dress", "shoes", "jeans"]},
    {"name": "condition", "role": "categorical", "vocabulary": ["new", "good", "worn"]},
    {"name": "size", "role": "categorical", "vocabulary": ["S", "M", "L", "XL"]},
    {"name": "colour", "role": "categorical", "vocabulary": ["black", "red", "blue"]},
    {"name": "age_months", "role": "numeric", "min": 0.0, "max": 120.0, "mean": 30.0},
    {"name": "title", "role": "text"},
    {"name": "description", "role": "text"},
    {"name": "image", "role": "image", "image_size": [16, 16]},
]

MYNTRA_INPUTS: list[dict[str, Any]] = [  # a few of training/configs/myntra.toml's columns
    {"name": "gender", "role": "categorical", "vocabulary": ["Men", "Women", "Unisex"]},
    {"name": "master_category", "role": "categorical", "vocabulary": ["Apparel", "Footwear"]},
    {"name": "year", "role": "numeric", "min": 2008.0, "max": 2019.0, "mean": 2015.0},
    {"name": "title", "role": "text"},
    {"name": "image", "role": "image", "image_size": [16, 16]},
]

GOOD_ITEM: dict[str, Any] = {
    "brand": "zara",
    "category": "dress",
    "condition": "good",
    "size": "M",
    "colour": "black",
    "age_months": 12.0,
    "title": "Black midi dress",
    "description": "Worn twice, no stains, comes from a smoke-free home.",
}


# ------------------------------------------------------------------------------ the contract models


class DecodeImages(keras.layers.Layer):
    """Encoded image bytes -> [batch, 16, 16, 3] floats in [0, 1], inside the graph."""

    def call(self, encoded):
        def one(data):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32), (16, 16)) / 255.0

        return tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec((16, 16, 3), tf.float32))

    def compute_output_shape(self, shape):
        return (shape[0], 16, 16, 3)


class PhotoStats(keras.layers.Layer):
    """[batch, slots] encoded photos, "" an empty slot -> the ImageStats of the given photos,
    averaged, and whether there is one (so a photo, its absence and the photos all matter)."""

    def call(self, encoded):
        slots = tf.shape(encoded)[1]
        flat = tf.reshape(encoded, [-1])

        def one(data):
            def decode():
                image = tf.io.decode_image(data, channels=3, expand_animations=False)
                return tf.image.resize(tf.cast(image, tf.float32), (16, 16)) / 255.0

            return tf.cond(tf.strings.length(data) > 0, decode, lambda: tf.zeros((16, 16, 3)))

        images = tf.map_fn(one, flat, fn_output_signature=tf.TensorSpec((16, 16, 3), tf.float32))
        means = tf.reduce_mean(images, axis=[1, 2])
        corner = tf.reduce_mean(images[:, :8, :8, :] - images[:, 8:, 8:, :], axis=[1, 2])
        stats = tf.reshape(tf.concat([means, corner], axis=-1), [-1, slots, 6])
        given = tf.cast(tf.strings.length(encoded) > 0, tf.float32)[..., None]
        count = tf.reduce_sum(given, axis=1)
        pooled = tf.reduce_sum(stats * given, axis=1) / tf.maximum(count, 1.0)
        return tf.concat([pooled, tf.minimum(count, 1.0)], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], 7)


class TextLength(keras.layers.Layer):
    def call(self, text):
        return tf.expand_dims(tf.cast(tf.strings.length(text), tf.float32) / 200.0, -1)

    def compute_output_shape(self, shape):
        return (shape[0], 1)


class FiniteScaled(keras.layers.Layer):
    """Non-finite numbers count as missing (0), as the contract says."""

    def call(self, x):
        x = tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))
        return tf.expand_dims(x / 50.0, -1)

    def compute_output_shape(self, shape):
        return (shape[0], 1)


class ImageStats(keras.layers.Layer):
    """Per-channel mean and the top-left vs bottom-right contrast, so orientation matters."""

    def call(self, images):
        means = tf.reduce_mean(images, axis=[1, 2])
        corner = tf.reduce_mean(images[:, :8, :8, :] - images[:, 8:, 8:, :], axis=[1, 2])
        return tf.concat([means, corner], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], 6)


class ToPrice(keras.layers.Layer):
    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, logit):
        return self.scale * tf.exp(tf.squeeze(logit, -1))

    def compute_output_shape(self, shape):
        return (shape[0],)


def _feature(spec: dict[str, Any], tensor: Any) -> Any:
    """What the model reads from one input, by its role."""
    role = spec["role"]
    if role == "image" and spec.get("max_photos") is not None:
        return PhotoStats()(tensor)
    if role == "categorical":
        return keras.layers.StringLookup(vocabulary=spec["vocabulary"], output_mode="one_hot")(tensor)
    if role == "numeric":
        return FiniteScaled()(tensor)
    if role == "text":
        return TextLength()(tensor)
    return ImageStats()(DecodeImages()(tensor))


def _card_input(spec: dict[str, Any]) -> dict[str, Any]:
    """One entry of the card's ``inputs``, as the exporter writes it."""
    entry = dict(spec, dtype="float32" if spec["role"] == "numeric" else "string")
    if spec["role"] == "categorical":
        entry.update(vocabulary_size=len(spec["vocabulary"]) + 1, examples=spec["vocabulary"][:2])
    elif spec["role"] == "numeric":
        entry.update(std=10.0, examples=[12.0, 3.0])
    elif spec["role"] == "text":
        entry["examples"] = ["A nice item"]
    else:
        entry["format"] = "encoded image bytes"
    return entry


def build_model(
    export_dir: Path,
    inputs: list[dict[str, Any]],
    currency: str,
    scale: float,
    version: int,
    seed: int = 0,
    max_photos: int | None = None,
) -> Path:
    """Export a tiny Keras model following docs/contract.md and write its model_card.json.

    ``max_photos``: a model of issue 17's format, whose image argument is ``[batch, max_photos]``
    ("" an empty slot, the photos pooled) and whose card has ``image.max_photos`` and a
    ``missing`` block (every input optional; "" / NaN / no photo mean missing).
    """
    keras.utils.set_random_seed(seed)
    if max_photos is not None:
        inputs = [dict(spec, max_photos=max_photos) if spec["role"] == "image" else spec for spec in inputs]

    def shape(spec: dict[str, Any]) -> tuple[int, ...]:
        return (max_photos,) if spec["role"] == "image" and max_photos is not None else ()

    model_inputs = {
        spec["name"]: keras.Input(
            shape=shape(spec), dtype="float32" if spec["role"] == "numeric" else "string", name=spec["name"]
        )
        for spec in inputs
    }
    features = [_feature(spec, model_inputs[spec["name"]]) for spec in inputs]
    hidden = keras.layers.Concatenate()(features)
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.2, seed=seed + 1))(hidden)
    model = keras.Model(model_inputs, {"price": ToPrice(scale)(logit)})
    model.export(str(export_dir), format="tf_saved_model", verbose=False)

    card = {
        "name": "price",
        "version": version,
        "created": "2026-11-28T23:59:00Z",
        "target": "price",
        "currency": currency,
        "signature": "serving_default",
        "output": "price",
        "inputs": [_card_input(spec) for spec in inputs],
        "metrics": {"test": {"rmsle": 0.21, "mae": 9.1, "mape": 0.18, "r2": 0.8, "medape": 0.14}},
        "dataset": {"rows": 200, "sha256": "0" * 64},
        "config": {"test": True},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    if max_photos is not None:
        card["missing"] = missing_block(inputs)
    (export_dir / "model_card.json").write_text(json.dumps(card, indent=2))
    return export_dir


def missing_block(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The card's ``missing`` block for ``inputs`` (common.card.MissingInputs)."""
    groups: dict[str, list[str]] = {}
    for spec in inputs:
        group = {"categorical": "metadata", "numeric": "metadata"}.get(spec["role"], spec["role"])
        groups.setdefault(group, []).append(spec["name"])
    return {
        "method": "input dropout (test)",
        "groups": {g: groups[g] for g in ("metadata", "text", "image") if g in groups},
        "input_dropout": 0.15,
    }


def signature_feeds(card: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A SavedModel's feeds for raw rows by the card: numbers as float32 (None: NaN), strings; the
    photos (bytes, or a list of bytes) as ``[batch, max_photos]`` padded with "" when the card's
    image input has ``max_photos``, else ``[batch]``."""
    feeds = {}
    for spec in card["inputs"]:
        name, values = spec["name"], [row[spec["name"]] for row in rows]
        if spec["role"] == "numeric":
            feeds[name] = tf.constant([np.nan if v is None else v for v in values], dtype=tf.float32)
        elif spec["role"] == "image" and spec.get("max_photos"):
            slots = spec["max_photos"]
            photos = [[v] if isinstance(v, bytes) else list(v) for v in values]
            feeds[name] = tf.constant([p + [b""] * (slots - len(p)) for p in photos], dtype=tf.string)
        else:
            feeds[name] = tf.constant(values, dtype=tf.string)
    return feeds


def install_version(
    source: Path, model_dir: Path, version: int | str, edit: Callable[[Path], None] | None = None
) -> Path:
    """Copy an export to ``model_dir/<version>`` the way the exporter does: into a hidden
    work folder first (where ``edit`` may change it), then one rename."""
    return models.install_version(source, model_dir, version, edit, tag="test")


def make_settings(model_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_dir": model_dir,
        "reload_interval_s": 0,
        "batch_max_size": 16,
        "batch_max_wait_ms": 2,
        "warmup_runs": 2,
        "api_key": None,
    }
    values.update(overrides)
    return Settings(**values)


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def wait_ready(client: TestClient, version: str | None = None, timeout: float = 60.0) -> None:
    def ready() -> bool:
        response = client.get("/readyz")
        return response.status_code == 200 and (version is None or response.json()["model_version"] == version)

    wait_until(ready, timeout, f"/readyz (version {version or 'any'})")


# ------------------------------------------------------------------------------ images


def image_bytes(
    fmt: str = "PNG",
    size: tuple[int, int] = (32, 32),
    mode: str = "RGB",
    seed: int = 0,
    noise: bool = False,
    **save: Any,
) -> bytes:
    """A small test photo: a seeded pattern of colour blocks (or pure noise, which does not
    compress), saved in ``fmt`` and ``mode``."""
    rng = np.random.default_rng(seed)
    if noise:
        pattern = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    else:
        base = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        pattern = np.kron(base, np.ones((size[1] // 4 + 1, size[0] // 4 + 1, 1), dtype=np.uint8))
    image = Image.fromarray(np.ascontiguousarray(pattern[: size[1], : size[0]]), "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


# ------------------------------------------------------------------------------ live server


class LiveServer(ThreadServer):
    """The app over ``settings`` served by uvicorn in a background thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings))


# ------------------------------------------------------------------------------ range and contributions

RANGE_QUANTILES = {"0.5": [-0.1, 0.08], "0.8": [-0.25, 0.2], "0.9": [-0.33, 0.3], "0.95": [-0.41, 0.37]}


def grey_png(side: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


NEUTRAL: dict[str, Any] = {  # an `explain.baseline` for DEFAULT_INPUTS
    "brand": "h&m",
    "category": "dress",
    "condition": "good",
    "size": "M",
    "colour": "black",
    "age_months": 24.0,
    "title": "",
    "description": "",
    "image": base64.b64encode(grey_png()).decode(),
}
INTERVAL_BLOCK = {"method": "split conformal (test)", "level": 0.8, "quantiles": RANGE_QUANTILES}


def _subset(width: float, n: int = 300, too_few: tuple[float, ...] = ()) -> dict[str, Any]:
    """A subset's quantiles: the global ones times ``width`` (wider with fewer inputs)."""
    quantiles = {lv: [round(lo * width, 4), round(hi * width, 4)] for lv, (lo, hi) in RANGE_QUANTILES.items()}
    return {"n": n, "quantiles": quantiles, "too_few_rows_for": list(too_few)}


# `interval.by_inputs` for the default inputs: every subset but "text" (the global range answers
# it); "image" has too few rows for 0.95 (the global 0.95 answers it).
BY_INPUTS: dict[str, dict[str, Any]] = {
    "metadata+text+image": _subset(1.0),
    "metadata+text": _subset(1.3),
    "metadata+image": _subset(1.2),
    "text+image": _subset(1.6),
    "metadata": _subset(1.8),
    "image": _subset(2.5, n=40, too_few=(0.95,)),
}
SUBSET_INTERVAL_BLOCK = {**INTERVAL_BLOCK, "method": "Mondrian split conformal (test)", "by_inputs": BY_INPUTS}
EXPLAIN_BLOCK = {"method": "occlusion (test)", "baseline": NEUTRAL}


def edit_card(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """An ``install_version`` edit that applies ``change`` to the card read as a dict."""

    def edit(folder: Path) -> None:
        card = json.loads((folder / "model_card.json").read_text())
        change(card)
        (folder / "model_card.json").write_text(json.dumps(card))

    return edit


def with_blocks(interval: Any = INTERVAL_BLOCK, explain: Any = EXPLAIN_BLOCK) -> Callable[[Path], None]:
    """An ``install_version`` edit that adds the card's `interval` and `explain` blocks (None: not added)."""

    def edit(folder: Path) -> None:
        card = json.loads((folder / "model_card.json").read_text())
        if interval is not None:
            card["interval"] = interval
        if explain is not None:
            card["explain"] = explain
        (folder / "model_card.json").write_text(json.dumps(card))

    return edit
