"""training/fit/quirks.py: Keras' end-of-data warning is silenced only where it means nothing."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.fit.quirks import known_end_of_data


def _model_and_stream():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    x = np.arange(8, dtype="float32").reshape(-1, 1)
    ds = tf.data.Dataset.from_tensor_slices((x, x)).filter(lambda a, b: a[0] >= 0).batch(4)  # no known length
    return model, ds


def _ran_out(caught) -> bool:
    return any("ran out of data" in str(w.message) for w in caught)


def test_no_warning_for_a_stream_of_unknown_length():
    model, ds = _model_and_stream()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with known_end_of_data(None):
            model.fit(ds, epochs=2, verbose=0)
    assert not _ran_out(caught)
    with warnings.catch_warnings(record=True) as caught:  # the pinned Keras does warn without it
        warnings.simplefilter("always")
        model.fit(ds, epochs=1, verbose=0)
    if not _ran_out(caught):
        pytest.fail("Keras no longer warns here: training/fit/quirks.py can go (keras-team/keras#23360)")


def test_the_warning_stays_when_steps_per_epoch_promised_more():
    model, ds = _model_and_stream()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with known_end_of_data(5):
            model.fit(ds, epochs=2, steps_per_epoch=5, verbose=0)
    assert _ran_out(caught)
