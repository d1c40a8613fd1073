"""The serving wrapper: raw request values (strings, numbers, encoded image bytes) in, price out."""

from __future__ import annotations

from typing import Any

import keras

from training.config import Config
from training.data.dataset import PHOTO_MASK
from training.features.layers import DecodeImage, PhotoMask
from training.features.photo import backbone, frozen_features
from training.model.embedding import PriceEmbedding
from training.model.inputs import raw_inputs
from training.model.layers import ExpPrice, PresentOnly


def _photo_reader(cfg: Config) -> keras.Model:
    """One encoded photo -> what the training model was fed: its pixels, or the frozen backbone's features."""
    data = keras.Input(shape=(), dtype="string", name="photo_bytes")
    x = DecodeImage(cfg.model.image_size, name="decode_image")(data)
    if frozen_features(cfg):
        x = keras.layers.Rescaling(1.0, name="photo_float")(x)  # uint8 -> float 0..255, as in the feature pass
        x = backbone(cfg)(x, training=False)
    return keras.Model(data, x, name="photo_reader")


def photo_feed(cfg: Config, photos) -> dict:
    """The request's photo slots ([batch, max_photos] strings, or [batch] with one) -> the training
    model's photo input and mask: each photo given is decoded (and encoded) once, empty slots stay zero."""
    if cfg.model.max_photos == 1:  # one photo: the signature takes a string per listing, as before
        photos = keras.layers.Reshape((1,), name="photo_slots")(photos)
    mask = PhotoMask(name="photo_mask")(photos)
    kind = "float32" if frozen_features(cfg) else "uint8"
    read = PresentOnly(_photo_reader(cfg), out_dtype=kind, name="photos_read")([photos, mask])
    return {cfg.data.image: read, PHOTO_MASK: mask}


def serving_model(cfg: Config, model: keras.Model, embedding: tuple[Any, Any] | None = None) -> keras.Model:
    """Wrap the training model so it takes encoded image bytes and returns {"price": ...}.

    With ``embedding`` (the comparables' affine map, ``training.model.embedding``) it also returns
    {"embedding": [batch, dims]}, the vector the service searches the comparables index with.
    """
    d = cfg.data
    inputs = raw_inputs(cfg, decoded_image=False)
    if cfg.model.max_photos == 1 and d.image in inputs:
        inputs[d.image] = keras.Input(shape=(), dtype="string", name=d.image)
    feed = {}
    for name in model.input:
        if name == d.image:
            feed.update(photo_feed(cfg, inputs[name]))
        elif name != PHOTO_MASK:
            feed[name] = inputs[name]
    outputs = {}
    if embedding is None:
        log_price = model(feed)
    else:
        both = keras.Model(model.input, {"log_price": model.output, "parts": model.price_parts}, name="price_parts")
        out = both(feed)
        log_price = out["log_price"]
        matrix, offset = embedding
        outputs["embedding"] = PriceEmbedding(matrix.tolist(), offset.tolist(), name="embedding")(out["parts"])
    outputs["price"] = ExpPrice(name="price")(log_price)
    return keras.Model({k: inputs[k] for k in feed if k != PHOTO_MASK}, outputs, name="price_serving")
