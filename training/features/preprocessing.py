"""What the model's preprocessing layers learn from the training split, fitted once.

Vocabularies, idf weights and means are fitted by `fit_preprocessing` and baked into the layers,
so the exported model takes raw values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import Config


@dataclass
class Preprocessing:
    """What the model's preprocessing layers learn from the training split."""

    vocab: dict[str, list[str]] = field(default_factory=dict)
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # mean, std
    text_vocab: dict[str, list[str]] = field(default_factory=dict)
    text_idf: dict[str, np.ndarray] = field(default_factory=dict)
    target_mean: float = 0.0


def fit_preprocessing(cfg: Config, train: pd.DataFrame) -> Preprocessing:
    """Adapt lookups, normalisation and text vectorisers on the training split only."""
    d, m = cfg.data, cfg.model
    pre = Preprocessing()
    for c in d.categorical:
        counts = train[c].value_counts()
        pre.vocab[c] = [v for v in counts.index.tolist() if v != ""]
    for c in d.numeric:
        v = train[c].to_numpy(dtype="float64")
        v = v[np.isfinite(v)]
        pre.numeric[c] = (float(v.mean()) if v.size else 0.0, float(v.std()) if v.size > 1 and v.std() > 0 else 1.0)
    for c in d.text:
        pre.text_vocab[c], pre.text_idf[c] = text_vocabulary(train[c].tolist(), m.text_max_tokens, m.text_ngrams)
    pre.target_mean = float(np.log(train[d.target].to_numpy(dtype="float64")).mean())
    return pre


def text_vocabulary(texts: list[str], max_tokens: int, ngrams: int) -> tuple[list[str], np.ndarray]:
    """The vocabulary and idf weights that `TextVectorization.adapt` would learn, in seconds.

    Keras' adapt deduplicates each document's tokens in an eager Python loop (minutes for 16k
    documents with bigrams); here the layer's own standardise/split/n-gram step makes the tokens,
    so they match what the layer sees at prediction time, and counting happens in Python.
    Same ordering (count, then token, descending) and idf = log(1 + docs / (1 + doc_count)).
    """
    tv = keras.layers.TextVectorization(ngrams=ngrams, output_mode="multi_hot")
    terms: Counter[bytes] = Counter()
    docs: Counter[bytes] = Counter()
    for start in range(0, len(texts), 4096):
        for row in tv._preprocess(tf.constant(texts[start : start + 4096])).to_list():
            terms.update(row)
            docs.update(set(row))
    terms.pop(b"[UNK]", None)
    ranked = sorted(terms.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[: max(0, max_tokens - 1)]
    vocab = [t.decode("utf-8", "replace") for t, _ in ranked]
    n = len(texts)
    idf = np.log(1 + n / (1 + np.array([docs[t] for t, _ in ranked], dtype="float64"))).astype("float32")
    return vocab, idf
