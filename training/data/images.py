"""The one function that turns encoded image bytes into the model's pixels.

The tf.data pipeline maps it over files while training, and the exported model runs the same
function inside its `DecodeImage` layer on the bytes a request carries, so they cannot drift apart.
"""

from __future__ import annotations

import tensorflow as tf


def decode_image(data: tf.Tensor, size: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes (a scalar tf.string) -> uint8 [size, size, 3] pixels.

    uint8 keeps the training pipeline's cache small; the image encoder rescales to [-1, 1].
    """
    img = tf.io.decode_image(data, channels=3, expand_animations=False)
    img = tf.image.resize(img, (size, size), method="bilinear", antialias=True)
    img = tf.saturate_cast(tf.round(img), tf.uint8)
    img.set_shape((size, size, 3))
    return img
