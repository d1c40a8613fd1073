"""The three-branch price model: one builder per branch, a fusion head, and the serving wrapper.

`build_model` returns the training model, whose image input is the decoded photo (the tf.data
pipeline decodes it in parallel with the shared `decode_image`). `serving_model` wraps it so that
it takes what a request holds: strings, numbers and encoded image bytes, and returns the price.
Everything the model needs to preprocess raw values (vocabularies, idf weights, means) is fitted
once on the training split by `fit_preprocessing` and baked into the layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import Config
from training.features import DecodeImage, ExpPrice, FillMissing, FirstColumns, IdfWeight, MemberMean, WideDeepBlend

MODALITIES = ("metadata", "text", "image")


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
        for row in tv._preprocess(tf.constant(texts[start:start + 4096])).to_list():
            terms.update(row)
            docs.update(set(row))
    terms.pop(b"[UNK]", None)
    ranked = sorted(terms.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[: max(0, max_tokens - 1)]
    vocab = [t.decode("utf-8", "replace") for t, _ in ranked]
    n = len(texts)
    idf = np.log(1 + n / (1 + np.array([docs[t] for t, _ in ranked], dtype="float64"))).astype("float32")
    return vocab, idf


def raw_inputs(cfg: Config, decoded_image: bool) -> dict[str, keras.KerasTensor]:
    """One keras.Input per column, named after it."""
    d = cfg.data
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in [*d.categorical, *d.text]}
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in d.numeric})
    if d.image:
        s = cfg.model.image_size
        inputs[d.image] = (keras.Input(shape=(s, s, 3), dtype="uint8", name=d.image) if decoded_image
                           else keras.Input(shape=(), dtype="string", name=d.image))
    return inputs


def _with_wide(features, wide: list) -> dict:
    """A branch's outputs: `features` for the fusion head, `wide` a linear term added to the log price."""
    if not wide:
        return {"features": features}
    total = keras.layers.Add()(wide) if len(wide) > 1 else wide[0]
    return {"features": features, "wide": total}


def build_metadata_encoder(cfg: Config, pre: Preprocessing) -> keras.Model:
    """Categories -> StringLookup (one OOV bucket) -> embedding; numbers -> fill + normalise."""
    d, m = cfg.data, cfg.model
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in d.categorical}
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in d.numeric})
    parts, wide = [], []
    summed = m.fusion == "sum"
    for c in d.categorical:
        ids = keras.layers.StringLookup(vocabulary=pre.vocab[c] or ["<none>"], num_oov_indices=1,
                                        name=f"{c}_lookup")(inputs[c])
        n = len(pre.vocab[c]) + 2
        dim = fusion_width(cfg) if summed else min(m.embedding_dim, max(2, int(round(1.6 * n ** 0.56))))
        parts.append(keras.layers.Embedding(n, dim, name=f"{c}_embedding")(ids))
        wide.append(keras.layers.Embedding(n, 1, embeddings_initializer="zeros", name=f"{c}_wide")(ids))
    for c in d.numeric:
        mean, std = pre.numeric[c]
        x = FillMissing(mean, name=f"{c}_fill")(inputs[c])
        x = keras.layers.Normalization(mean=[mean, 0.0], variance=[std**2, 1.0], name=f"{c}_norm")(x)
        parts.append(keras.layers.Dense(fusion_width(cfg), use_bias=False, name=f"{c}_project")(x) if summed else x)
    if summed:  # one-hot (embedding) and numbers, projected to the fusion width and summed: linear
        x = keras.layers.Add(name="metadata_sum")(parts) if len(parts) > 1 else parts[0]
        return keras.Model(inputs, _with_wide(x, wide), name="metadata_encoder")
    x = keras.layers.Concatenate(name="metadata_concat")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Dense(m.metadata_units * 2, activation="gelu")(x)
    x = keras.layers.Dropout(m.dropout)(x)
    x = keras.layers.Dense(m.metadata_units, activation="gelu")(x)
    return keras.Model(inputs, _with_wide(x, wide), name="metadata_encoder")


def build_text_encoder(cfg: Config, pre: Preprocessing) -> keras.Model:
    """Each text column -> bag of word and bigram (tf-idf) -> unit norm -> a wide dense layer."""
    d, m = cfg.data, cfg.model
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in d.text}
    parts, wide = [], []
    for c in d.text:
        vocab = pre.text_vocab[c] or ["<none>"]
        idf = pre.text_idf.get(c) if pre.text_vocab[c] else np.ones(1)
        mode = "multi_hot" if m.text_mode == "binary_idf" else m.text_mode
        tv = keras.layers.TextVectorization(max_tokens=m.text_max_tokens, ngrams=m.text_ngrams,
                                            output_mode=mode, vocabulary=vocab,
                                            idf_weights=idf if mode == "tf_idf" else None,
                                            name=f"{c}_vectorizer")
        bag = tv(inputs[c])
        if m.text_mode == "binary_idf":  # OOV slot first, weighted by the mean idf as Keras does
            bag = IdfWeight([float(np.mean(idf))] + list(map(float, idf)), name=f"{c}_idf")(bag)
        bag = keras.layers.UnitNormalization(name=f"{c}_unit")(bag)
        x = bag
        if 0 < m.text_deep_tokens < len(vocab):  # the deep path sees only the most frequent n-grams
            x = FirstColumns(m.text_deep_tokens + 1, name=f"{c}_frequent")(x)
        x = keras.layers.Dropout(m.dropout / 2)(x)
        if m.fusion == "sum":
            parts.append(keras.layers.Dense(fusion_width(cfg), use_bias=False, name=f"{c}_project")(x))
        else:
            parts.append(keras.layers.Dense(m.text_units, activation="gelu", name=f"{c}_dense")(x))
        # the wide path: a linear model on the bag of n-grams (what Ridge on tf-idf does so well)
        wide.append(keras.layers.Dense(1, kernel_initializer="zeros", use_bias=False, name=f"{c}_wide")(bag))
    if m.fusion == "sum":  # each column's bag projected to the fusion width, summed: linear
        x = keras.layers.Add(name="text_sum")(parts) if len(parts) > 1 else parts[0]
        return keras.Model(inputs, _with_wide(x, wide), name="text_encoder")
    x = keras.layers.Concatenate(name="text_concat")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Dropout(m.dropout)(x)
    x = keras.layers.Dense(m.text_units, activation="gelu")(x)
    return keras.Model(inputs, _with_wide(x, wide), name="text_encoder")


def _residual(x, filters: int, stride: int, name: str):
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.Activation("relu")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2", gamma_initializer="zeros")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return keras.layers.Activation("relu")(keras.layers.Add()([shortcut, y]))


def build_image_encoder(cfg: Config) -> keras.Model:
    """Decoded photo -> a small ResNet (a strided stem, one residual block per stage) -> pooled features."""
    m = cfg.model
    s = m.image_size
    inp = keras.Input(shape=(s, s, 3), dtype="uint8", name=cfg.data.image)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    if m.image_augment:  # training only (identity in inference): 7.6k photos are learnt by heart otherwise
        x = keras.layers.RandomFlip("horizontal", seed=cfg.train.seed, name="augment_flip")(x)
        x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=cfg.train.seed, name="augment_shift")(x)
        x = keras.layers.RandomZoom(0.15, fill_mode="nearest", seed=cfg.train.seed, name="augment_zoom")(x)
    if m.backbone_weights:
        base = keras.applications.MobileNetV3Small(input_shape=(s, s, 3), include_top=False, weights=None,
                                                   include_preprocessing=False, pooling="avg")
        base.load_weights(m.backbone_weights)
        x = base(x)
    else:
        x = keras.layers.Conv2D(m.image_stem, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
        x = keras.layers.BatchNormalization(name="stem_bn")(x)
        x = keras.layers.Activation("relu")(x)
        for i, f in enumerate(m.image_filters):  # every stage halves the resolution: cheap on a CPU
            x = _residual(x, f, 2, f"stage{i}")
        x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), keras.layers.GlobalMaxPooling2D()(x)])
    x = keras.layers.Dropout(m.dropout, name="image_dropout")(x)
    if m.fusion == "sum":  # unit norm like each text column's bag: the photo cannot drown the rest at the start
        x = keras.layers.UnitNormalization(name="image_unit")(x)
        x = keras.layers.Dense(fusion_width(cfg), name="image_project")(x)
    else:
        x = keras.layers.Dense(m.image_units, activation="gelu")(x)
    return keras.Model(inp, x, name="image_encoder")


def fusion_width(cfg: Config) -> int:
    """Width of the branches' outputs when they are summed: the first hidden layer of every member."""
    return (cfg.model.fusion_units[0] if cfg.model.fusion_units else 256) * cfg.model.members


def active_modalities(cfg: Config, modalities: tuple[str, ...] = MODALITIES) -> tuple[str, ...]:
    """The modalities that both were asked for and have columns in the config."""
    d = cfg.data
    has = {"metadata": bool(d.categorical or d.numeric), "text": bool(d.text), "image": bool(d.image)}
    return tuple(x for x in modalities if has[x])


def build_model(cfg: Config, pre: Preprocessing, modalities: tuple[str, ...] = MODALITIES) -> keras.Model:
    """The training model: the chosen branches, concatenated, into one log-price head."""
    d, m = cfg.data, cfg.model
    mods = active_modalities(cfg, modalities)
    if not mods:
        raise ValueError(f"no inputs for modalities {modalities}")
    inputs = raw_inputs(cfg, decoded_image=True)
    branches, wide = [], []
    outs = []
    if "metadata" in mods:
        enc = build_metadata_encoder(cfg, pre)
        outs.append(enc({c: inputs[c] for c in [*d.categorical, *d.numeric]}))
    if "text" in mods:
        enc = build_text_encoder(cfg, pre)
        outs.append(enc({c: inputs[c] for c in d.text}))
    for out in outs:
        branches.append(out["features"])
        wide += [out["wide"]] if "wide" in out else []
    if "image" in mods:
        branches.append(build_image_encoder(cfg)(inputs[d.image]))
    k = m.members
    if m.fusion == "sum":
        # the branches' linear projections add up to the first hidden layer (a one-hidden-layer
        # MLP over one-hot metadata, tf-idf text and image features, as the Mercari winners did);
        # with k members, k such layers side by side, each feeding its own head
        x = keras.layers.Add(name="fusion")(branches) if len(branches) > 1 else branches[0]
        x = keras.layers.Activation("relu", name="fusion_relu")(x)
        skip, widths = x, m.fusion_units[1:]
    else:
        x = keras.layers.Concatenate(name="fusion")(branches) if len(branches) > 1 else branches[0]
        skip, widths = x, m.fusion_units
    if k > 1:  # [batch, k * width] -> [batch, k, width]: the members share no weight from here on
        x = keras.layers.Reshape((k, fusion_width(cfg) // k), name="members_split")(x)
    for i, units in enumerate(widths):
        x = keras.layers.Dropout(m.dropout, name=f"head_dropout{i}")(x)
        if k > 1:
            x = keras.layers.EinsumDense("bkw,kwu->bku", (k, units), bias_axes="ku", activation="gelu",
                                         name=f"head_dense{i}")(x)
        else:
            x = keras.layers.Dense(units, activation="gelu", name=f"head_dense{i}")(x)
    if k > 1:
        deep = keras.layers.EinsumDense("bku,ku->bk", (k,), bias_axes="k", name="head_out")(x)
    else:
        deep = keras.layers.Dense(1, name="head_out")(x)
    linear = keras.layers.Dense(k, kernel_initializer="zeros",
                                bias_initializer=keras.initializers.Constant(pre.target_mean), name="head_linear")(skip)
    if wide and m.wide_init == "ridge" and m.blend > 0:
        # wide & deep as an ensemble: the frozen Ridge and the deep network, each a whole estimate
        deep_log_price = keras.layers.Add(name="deep_log_price")([deep, linear])
        if k > 1:
            deep_log_price = MemberMean(name="deep_mean")(deep_log_price)
        wide_sum = keras.layers.Add(name="wide_sum")(wide) if len(wide) > 1 else wide[0]
        log_price = WideDeepBlend(m.blend, name="log_price")([deep_log_price, wide_sum])
    elif k > 1:
        log_price = MemberMean(name="log_price")(keras.layers.Add(name="members_log_price")([deep, linear, *wide]))
    else:
        # wide & deep as one sum: the branches' linear terms (category offsets, n-gram weights) add in
        log_price = keras.layers.Add(name="log_price")([deep, linear, *wide])
    used = {c: inputs[c] for c in model_columns(cfg, mods)}
    return keras.Model(used, log_price, name="price_model" if mods == active_modalities(cfg) else "_".join(mods))


def model_columns(cfg: Config, mods: tuple[str, ...]) -> list[str]:
    d = cfg.data
    cols = []
    cols += [*d.categorical, *d.numeric] if "metadata" in mods else []
    cols += list(d.text) if "text" in mods else []
    cols += [d.image] if "image" in mods and d.image else []
    return cols


def serving_model(cfg: Config, model: keras.Model) -> keras.Model:
    """Wrap the training model so it takes encoded image bytes and returns {"price": ...}."""
    d = cfg.data
    inputs = raw_inputs(cfg, decoded_image=False)
    feed = {}
    for name in model.input:
        if name == d.image:
            feed[name] = DecodeImage(cfg.model.image_size, name="decode_image")(inputs[name])
        else:
            feed[name] = inputs[name]
    log_price = model(feed)
    price = ExpPrice(name="price")(log_price)
    return keras.Model({k: inputs[k] for k in feed}, {"price": price}, name="price_serving")
