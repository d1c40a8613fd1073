"""Preprocessing shared by the input pipeline and the exported model, so they cannot drift apart.

`decode_image` is the one function that turns encoded image bytes into the model's pixels: the
tf.data pipeline maps it over files while training, and the exported model runs the same function
inside its `DecodeImage` layer on the bytes a request carries.
"""

from __future__ import annotations

import keras
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


@keras.saving.register_keras_serializable(package="price")
class DecodeImage(keras.layers.Layer):
    """A batch of encoded image files (tf.string [batch]) -> uint8 [batch, size, size, 3]."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, data):
        return tf.map_fn(lambda b: decode_image(b, self.size), data,
                         fn_output_signature=tf.TensorSpec((self.size, self.size, 3), tf.uint8))

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
class ExpPrice(keras.layers.Layer):
    """Log price -> price, the exported signature's output."""

    def call(self, x):
        return tf.exp(tf.reshape(x, (-1,)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)


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
class WideDeepBlend(keras.layers.Layer):
    """[deep log price, wide terms] -> the model's log price.

    The wide path is Ridge solved in closed form and frozen (training/wide.py); the deep network
    predicts the whole log price on its own. While training, the layer passes the deep estimate
    through, so the network learns the price itself rather than the linear model's residual (on
    7.6k Myntra rows it overfitted the residual's noise); in inference (validation, evaluation,
    serving) it returns `(1 - w) * (wide + intercept) + w * deep`, an ensemble of two different
    learners. `w` and the intercept are set after the Ridge solve and are not trained.
    """

    def __init__(self, deep_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.initial_weight = float(deep_weight)

    def build(self, input_shape):
        self.intercept = self.add_weight(shape=(), initializer="zeros", trainable=False, name="intercept")
        self.deep_weight = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_weight),
                                           trainable=False, name="deep_weight")

    def call(self, inputs, training=None):
        deep, wide = inputs
        if training:
            return deep
        return (1.0 - self.deep_weight) * (wide + self.intercept) + self.deep_weight * deep

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "deep_weight": self.initial_weight}


@keras.saving.register_keras_serializable(package="price")
class MemberMean(keras.layers.Layer):
    """[batch, k] estimates of k independently trained members -> their mean, [batch, 1].

    While training the layer passes the k estimates through: the squared error is taken against
    each member on its own (the label broadcasts over the k columns), so no member learns to make
    up for another and their errors stay as different as their initialisations made them; in
    inference (validation, evaluation, serving) it returns their mean, an ensemble inside the model.
    """

    def call(self, x, training=None):
        if training:
            return x
        return tf.reduce_mean(x, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)
