"""Our fast vocabulary fit matches what keras.layers.TextVectorization.adapt learns."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from training.features.preprocessing import text_vocabulary

DOCS = [
    "Genuine leather jacket, size M. There is a small hole near the cuff.",
    "Cotton t-shirt by Zara; fits true to size!",
    "genuine LEATHER bag",
    "Polyester dress. Polyester!",
    "",
    "Merino wool coat by Hugo Boss, size L. Original receipt included.",
]


def test_matches_keras_adapt_vocabulary_idf_and_outputs():
    ref = keras.layers.TextVectorization(max_tokens=25, ngrams=2, output_mode="tf_idf")
    ref.adapt(tf.data.Dataset.from_tensor_slices(DOCS).batch(2))
    vocab, idf = text_vocabulary(DOCS, max_tokens=25, ngrams=2)
    ref_vocab = ref.get_vocabulary()[1:]
    assert len(vocab) == len(ref_vocab) == 24
    assert set(vocab[:10]) == set(ref_vocab[:10])  # the same frequent tokens (ties may order differently)
    ours = keras.layers.TextVectorization(
        max_tokens=25, ngrams=2, output_mode="tf_idf", vocabulary=vocab, idf_weights=idf
    )
    ref_idf = dict(zip(ref_vocab, np.asarray(ref._lookup_layer.idf_weights_const)[1:], strict=True))
    for token, weight in zip(vocab, idf, strict=True):
        if token in ref_idf:
            assert abs(ref_idf[token] - weight) < 1e-6, token
    probe = tf.constant(["genuine leather coat", "a small hole"])
    a, b = ours(probe).numpy(), ref(probe).numpy()
    order = [ref_vocab.index(t) + 1 if t in ref_vocab else 0 for t in ["[UNK]", *vocab]]
    common = [i for i, t in enumerate(["[UNK]", *vocab]) if i == 0 or t in ref_vocab]
    np.testing.assert_allclose(a[:, common[1:]], b[:, [order[i] for i in common[1:]]], rtol=1e-6)
