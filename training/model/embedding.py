"""The comparables' embedding: what the model's log price is made of, as a vector.

A wide & deep model's log price is a sum: one linear ("wide") term per category and text column,
plus the deep network's part (the rest). The embedding is that sum taken apart, each part minus its
training mean, in log-price units, each optionally scaled by ``comparables.emphasis``:

    [brand term, category term, ..., title term, description term, deep part]

Two listings are close (Euclidean distance) when their prices are made of the same parts: the same
category offset, a similar brand premium, text that moves the price alike, and a deep part (the
photo, the numbers, the interactions) of the same size. A distance of 0.1 is parts that differ by
about 10% of the price in all; similarity = exp(-distance).

Why not the fused representation (the head's first input) or its last hidden layer: on the
synthetic data (a model trained by `make train`, 2026-12-01) their nearest neighbours shared the
listing's category for 46% and 34% of the top 5, and the neighbours' median price scored 0.74 test
RMSLE (predicting the mean scores 0.72): the deep path there learns the residual of the frozen
Ridge, not the price. The parts scored 72% and 0.200 (the model: 0.163).

``price_parts(model)`` is ``[wide terms..., log price]`` (``training.model.head`` builds it beside
the training model); ``embedding_map`` turns it into the embedding with one constant affine map,
which the serving model applies (``PriceEmbedding``), so service and index embed alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from training.model.layers import SubsetBlend, WideDeepBlend

DEEP = "deep"  # the name of the deep part in the embedding's dimensions


@keras.saving.register_keras_serializable(package="price")
class PriceEmbedding(keras.layers.Layer):
    """[batch, parts] -> [batch, dims]: ``parts @ matrix + offset`` (constants fixed at export)."""

    def __init__(self, matrix: list[list[float]], offset: list[float], **kwargs):
        super().__init__(**kwargs)
        self.matrix_values = np.asarray(matrix, dtype="float32")
        self.offset_values = np.asarray(offset, dtype="float32")

    def call(self, parts):
        parts = tf.reshape(tf.cast(parts, tf.float32), (-1, self.matrix_values.shape[0]))
        return tf.matmul(parts, tf.constant(self.matrix_values)) + tf.constant(self.offset_values)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.matrix_values.shape[1])

    def get_config(self):
        return {**super().get_config(), "matrix": self.matrix_values.tolist(), "offset": self.offset_values.tolist()}


def parts_model(model: keras.Model) -> keras.Model:
    """The training model's inputs -> ``[batch, parts]``: its wide terms, then its log price."""
    return keras.Model(model.input, model.price_parts, name="price_parts")


def part_names(model: keras.Model) -> list[str]:
    return list(model.price_part_names)


def dimension_names(model: keras.Model) -> list[str]:
    """The embedding's dimensions: the wide columns, then the deep part."""
    return part_names(model)[:-1] + [DEEP]


def _wide_scale(model: keras.Model) -> float:
    """How much of each wide term reaches the log price of a complete listing: 1 - w under a
    wide/deep blend, else 1."""
    blend = next((layer for layer in model.layers if isinstance(layer, SubsetBlend | WideDeepBlend)), None)
    if isinstance(blend, SubsetBlend):
        return 1.0 - float(blend.deep_weights.numpy()[getattr(model, "full_subset", 7)])  # all its groups
    return 1.0 - float(blend.deep_weight.numpy()) if blend is not None else 1.0


def embedding_map(
    model: keras.Model, parts: np.ndarray, emphasis: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The affine map (matrix [parts, dims], offset [dims]) from the parts to the embedding.

    ``parts``: the training rows' ``[wide terms..., log price]`` (for the means). Each wide term
    counts as much as it reaches the log price; the deep part is the log price minus them.
    """
    n = parts.shape[1]
    scale = _wide_scale(model)
    matrix = np.zeros((n, n), dtype="float64")
    for i in range(n - 1):
        matrix[i, i] = scale  # the wide term, as it counts in the log price
        matrix[i, n - 1] = -scale  # ... and taken out of the deep part
    matrix[n - 1, n - 1] = 1.0
    mean = parts.astype("float64").mean(axis=0) @ matrix
    weights = np.array([float(emphasis.get(name, 1.0)) for name in dimension_names(model)])
    return matrix * weights[None, :], -mean * weights


def embed(parts: np.ndarray, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """What ``PriceEmbedding`` computes, in numpy (the index and the evaluation)."""
    return (parts.astype("float64") @ matrix + offset).astype("float32")


__all__ = ["DEEP", "PriceEmbedding", "dimension_names", "embed", "embedding_map", "part_names", "parts_model"]
