"""Keras layers of the price head: the exponent to a price, the wide/deep blend, the members' mean."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="price")
class ExpPrice(keras.layers.Layer):
    """Log price -> price, the exported signature's output."""

    def call(self, x):
        return tf.exp(tf.reshape(x, (-1,)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)


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
        self.deep_weight = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_weight), trainable=False, name="deep_weight"
        )

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
