"""Keras preprocessing layers baked into the model: photo decoding, missing-number fill, idf weights.

`DecodeImage` runs the same `decode_image` as the training input pipeline, on the bytes a request
carries, so training and serving cannot drift apart.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from training.data.images import decode_image


@keras.saving.register_keras_serializable(package="price")
class DecodeImage(keras.layers.Layer):
    """A batch of encoded image files (tf.string [batch]) -> uint8 [batch, size, size, 3]."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, data):
        return tf.map_fn(
            lambda b: decode_image(b, self.size),
            data,
            fn_output_signature=tf.TensorSpec((self.size, self.size, 3), tf.uint8),
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 3)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="price")
class FillMissing(keras.layers.Layer):
    """Non-finite numbers (missing values) -> the training mean, plus a 0/1 'was missing' flag."""

    def __init__(self, mean: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mean = float(mean)

    def call(self, x):
        x = tf.reshape(tf.cast(x, tf.float32), (-1, 1))
        ok = tf.math.is_finite(x)
        return tf.concat([tf.where(ok, x, self.mean), 1.0 - tf.cast(ok, tf.float32)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


@keras.saving.register_keras_serializable(package="price")
class IdfWeight(keras.layers.Layer):
    """A 0/1 bag of n-grams times each n-gram's idf: tf-idf with binary term frequency.

    Binary tf behaves like scikit-learn's sublinear tf on long, repetitive descriptions, where raw
    counts (Keras' own "tf_idf" mode) let one repeated word dominate the row.
    """

    def __init__(self, idf, **kwargs):
        super().__init__(**kwargs)
        self.idf = [float(v) for v in idf]
        self._idf = tf.constant(self.idf, dtype=tf.float32)

    def call(self, x):
        return tf.cast(x, tf.float32) * self._idf

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "idf": self.idf}


@keras.saving.register_keras_serializable(package="price")
class FirstColumns(keras.layers.Layer):
    """The first `k` columns of a bag of n-grams: its `k - 1` most frequent n-grams and the OOV slot."""

    def __init__(self, k: int, **kwargs):
        super().__init__(**kwargs)
        self.k = int(k)

    def call(self, x):
        return x[:, : self.k]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], min(self.k, input_shape[1]) if input_shape[1] else self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="price")
class PhotoMask(keras.layers.Layer):
    """Photo slots (tf.string [batch, slots], "" an empty slot) -> 1.0 where a slot holds a file."""

    def call(self, data):
        return tf.cast(tf.strings.length(data) > 0, tf.float32)

    def compute_output_shape(self, input_shape):
        return input_shape
