"""The serving wrapper: raw request values (strings, numbers, encoded image bytes) in, price out."""

from __future__ import annotations

import keras

from training.config import Config
from training.features.layers import DecodeImage
from training.features.photo import backbone, frozen_features
from training.model.inputs import raw_inputs
from training.model.layers import ExpPrice


def _frozen_backbone(cfg: Config, pixels):
    """The decoded photo through the frozen backbone: the features the training model was fed."""
    x = keras.layers.Rescaling(1.0, name="photo_float")(pixels)  # uint8 -> float 0..255, as in the feature pass
    return backbone(cfg)(x, training=False)


def serving_model(cfg: Config, model: keras.Model) -> keras.Model:
    """Wrap the training model so it takes encoded image bytes and returns {"price": ...}."""
    d = cfg.data
    inputs = raw_inputs(cfg, decoded_image=False)
    feed = {}
    for name in model.input:
        if name == d.image:
            pixels = DecodeImage(cfg.model.image_size, name="decode_image")(inputs[name])
            feed[name] = _frozen_backbone(cfg, pixels) if frozen_features(cfg) else pixels
        else:
            feed[name] = inputs[name]
    log_price = model(feed)
    price = ExpPrice(name="price")(log_price)
    return keras.Model({k: inputs[k] for k in feed}, {"price": price}, name="price_serving")
