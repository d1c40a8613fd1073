"""The model's named inputs and which columns each modality uses."""

from __future__ import annotations

import keras

from training.config import Config
from training.data.dataset import PHOTO_MASK
from training.features.photo import feature_width, frozen_features

MODALITIES = ("metadata", "text", "image")


def raw_inputs(cfg: Config, decoded_image: bool) -> dict[str, keras.KerasTensor]:
    """One keras.Input per column, named after it; the photos as decoded pixels (or features) or as file bytes.

    The photos come in `model.max_photos` slots: the exported model takes a string per slot ("" an
    empty one); the training model takes each slot's pixels (or features) and the photo mask
    (PHOTO_MASK, 1.0 where a slot holds a photo).
    """
    d, p = cfg.data, cfg.model.max_photos
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in [*d.categorical, *d.text]}
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in d.numeric})
    if d.image and not decoded_image:  # what a request carries: the encoded files
        inputs[d.image] = keras.Input(shape=(p,), dtype="string", name=d.image)
        return inputs
    if d.image and frozen_features(cfg):  # a frozen backbone's features, computed once per photo
        inputs[d.image] = keras.Input(shape=(p, feature_width(cfg)), dtype="float32", name=d.image)
    elif d.image:
        s = cfg.model.image_size
        inputs[d.image] = keras.Input(shape=(p, s, s, 3), dtype="uint8", name=d.image)
    if d.image:
        inputs[PHOTO_MASK] = keras.Input(shape=(p,), dtype="float32", name=PHOTO_MASK)
    return inputs


def active_modalities(cfg: Config, modalities: tuple[str, ...] = MODALITIES) -> tuple[str, ...]:
    """The modalities that both were asked for and have columns in the config."""
    d = cfg.data
    has = {"metadata": bool(d.categorical or d.numeric), "text": bool(d.text), "image": bool(d.image)}
    return tuple(x for x in modalities if has[x])


def model_columns(cfg: Config, mods: tuple[str, ...]) -> list[str]:
    d = cfg.data
    cols = []
    cols += [*d.categorical, *d.numeric] if "metadata" in mods else []
    cols += list(d.text) if "text" in mods else []
    cols += [d.image, PHOTO_MASK] if "image" in mods and d.image else []
    return cols


def fusion_width(cfg: Config) -> int:
    """Width of the branches' outputs when they are summed: the first hidden layer of every member."""
    return (cfg.model.fusion_units[0] if cfg.model.fusion_units else 256) * cfg.model.members
