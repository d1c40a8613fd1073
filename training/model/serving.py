"""The serving wrapper: raw request values (strings, numbers, encoded image bytes) in, price out."""

from __future__ import annotations

from typing import Any

import keras

from training.config import Config
from training.features.layers import DecodeImage
from training.features.photo import backbone, frozen_features
from training.model.embedding import PriceEmbedding
from training.model.inputs import raw_inputs
from training.model.layers import ExpPrice


def _frozen_backbone(cfg: Config, pixels):
    """The decoded photo through the frozen backbone: the features the training model was fed."""
    x = keras.layers.Rescaling(1.0, name="photo_float")(pixels)  # uint8 -> float 0..255, as in the feature pass
    return backbone(cfg)(x, training=False)


def serving_model(cfg: Config, model: keras.Model, embedding: tuple[Any, Any] | None = None) -> keras.Model:
    """Wrap the training model so it takes encoded image bytes and returns {"price": ...}.

    With ``embedding`` (the comparables' affine map, ``training.model.embedding``) it also returns
    {"embedding": [batch, dims]}, the vector the service searches the comparables index with.
    """
    d = cfg.data
    inputs = raw_inputs(cfg, decoded_image=False)
    feed = {}
    for name in model.input:
        if name == d.image:
            pixels = DecodeImage(cfg.model.image_size, name="decode_image")(inputs[name])
            feed[name] = _frozen_backbone(cfg, pixels) if frozen_features(cfg) else pixels
        else:
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
    return keras.Model({k: inputs[k] for k in feed}, outputs, name="price_serving")
