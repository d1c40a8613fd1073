"""One builder per branch, each a named sub-model: metadata, text and image encoders.

Each takes its raw columns (the image: the decoded uint8 photo) and returns the features it gives
the fusion head, plus, for metadata and text, the wide path's linear terms.
"""

from __future__ import annotations

import keras
import numpy as np

from training.config import Config
from training.data.dataset import PHOTO_MASK
from training.features.layers import FillMissing, FirstColumns, IdfWeight
from training.features.photo import backbone, feature_width, frozen_features, pretrained
from training.features.preprocessing import Preprocessing
from training.model.inputs import fusion_width
from training.model.layers import Absent, MaskedMean, PresentOnly


def _sum(tensors: list):
    return keras.layers.Add()(tensors) if len(tensors) > 1 else tensors[0]


def _with_wide(features, wide: list, alone: list | None = None, partial=None) -> dict:
    """A branch's outputs: `features` for the fusion head, `wide` a linear term added to the log price,
    `wide_terms` that term column by column ([batch, columns]: the comparables' embedding), and
    with `alone` the terms of the Ridge solved on this branch's columns alone (`wide_alone`), the
    wide path of a listing that gives only this group (training/fit/wide.py). With `partial`, the
    features of the branch's own projection for the incomplete listings' head (`features_partial`)."""
    out = {"features": features} if partial is None else {"features": features, "features_partial": partial}
    if not wide:
        return out
    terms = keras.layers.Concatenate()(wide) if len(wide) > 1 else wide[0]
    out.update({"wide": _sum(wide), "wide_terms": terms})
    if alone:
        out["wide_alone"] = _sum(alone)
    return out


def _metadata_mlp(m, x, suffix: str = ""):
    x = keras.layers.Dense(m.metadata_units * 2, activation="gelu", name=f"metadata_dense0{suffix}")(x)
    x = keras.layers.Dropout(m.dropout, name=f"metadata_dropout{suffix}")(x)
    return keras.layers.Dense(m.metadata_units, activation="gelu", name=f"metadata_dense1{suffix}")(x)


def build_metadata_encoder(cfg: Config, pre: Preprocessing, alone: bool = False, partial: bool = False) -> keras.Model:
    """Categories -> StringLookup ("" missing, one OOV bucket for unknown values) -> embedding;
    numbers -> fill + a missing flag + normalise. With `alone`, a second wide term per category
    for the Ridge of the metadata alone; with `partial`, a second projection (embeddings, or MLP)
    of the same lookups for the incomplete listings' head."""
    d, m = cfg.data, cfg.model
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in d.categorical}
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in d.numeric})
    parts, wide, lone, own = [], [], [], []
    summed = m.fusion == "sum"
    for c in d.categorical:
        # index 0: missing (""), 1: a value the training split never had, 2...: the vocabulary
        ids = keras.layers.StringLookup(
            vocabulary=pre.vocab[c] or ["<none>"], num_oov_indices=1, mask_token="", name=f"{c}_lookup"
        )(inputs[c])
        n = len(pre.vocab[c] or ["<none>"]) + 2
        dim = fusion_width(cfg) if summed else min(m.embedding_dim, max(2, int(round(1.6 * n**0.56))))
        parts.append(keras.layers.Embedding(n, dim, name=f"{c}_embedding")(ids))
        if partial and summed:
            own.append(keras.layers.Embedding(n, dim, name=f"{c}_embedding_partial")(ids))
        wide.append(keras.layers.Embedding(n, 1, embeddings_initializer="zeros", name=f"{c}_wide")(ids))
        if alone:
            lone.append(keras.layers.Embedding(n, 1, embeddings_initializer="zeros", name=f"{c}_wide_alone")(ids))
    for c in d.numeric:
        mean, std = pre.numeric[c]
        x = FillMissing(mean, name=f"{c}_fill")(inputs[c])
        x = keras.layers.Normalization(mean=[mean, 0.0], variance=[std**2, 1.0], name=f"{c}_norm")(x)
        parts.append(keras.layers.Dense(fusion_width(cfg), use_bias=False, name=f"{c}_project")(x) if summed else x)
        if partial and summed:
            own.append(keras.layers.Dense(fusion_width(cfg), use_bias=False, name=f"{c}_project_partial")(x))
    if summed:  # one-hot (embedding) and numbers, projected to the fusion width and summed: linear
        x = keras.layers.Add(name="metadata_sum")(parts) if len(parts) > 1 else parts[0]
        x_own = (keras.layers.Add(name="metadata_sum_partial")(own) if len(own) > 1 else own[0]) if partial else None
        return keras.Model(inputs, _with_wide(x, wide, lone, x_own), name="metadata_encoder")
    x = keras.layers.Concatenate(name="metadata_concat")(parts) if len(parts) > 1 else parts[0]
    x_own = _metadata_mlp(m, x, "_partial") if partial else None
    return keras.Model(inputs, _with_wide(_metadata_mlp(m, x), wide, lone, x_own), name="metadata_encoder")


def _text_top(m, parts: list, suffix: str = ""):
    """The columns' features -> the branch's: summed (fusion = sum), or concatenated into a dense layer."""
    if m.fusion == "sum":  # each column's bag projected to the fusion width, summed: linear
        return keras.layers.Add(name=f"text_sum{suffix}")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Concatenate(name=f"text_concat{suffix}")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Dropout(m.dropout, name=f"text_dropout{suffix}")(x)
    return keras.layers.Dense(m.text_units, activation="gelu", name=f"text_dense{suffix}")(x)


def _text_column(cfg: Config, c: str, x, suffix: str = ""):
    """One column's (frequent) bag -> its projection (sum) or its dense layer (concat)."""
    m = cfg.model
    if m.fusion == "sum":
        return keras.layers.Dense(fusion_width(cfg), use_bias=False, name=f"{c}_project{suffix}")(x)
    return keras.layers.Dense(m.text_units, activation="gelu", name=f"{c}_dense{suffix}")(x)


def build_text_encoder(cfg: Config, pre: Preprocessing, alone: bool = False, partial: bool = False) -> keras.Model:
    """Each text column -> bag of word and bigram (tf-idf) -> unit norm -> a wide dense layer.

    A missing text ("") is an empty bag: zero features, zero wide term. With `alone`, a second
    wide term per column for the Ridge of the text alone; with `partial`, a second projection of
    the same bags for the incomplete listings' head."""
    d, m = cfg.data, cfg.model
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in d.text}
    parts, wide, lone, own = [], [], [], []
    for c in d.text:
        vocab = pre.text_vocab[c] or ["<none>"]
        idf = pre.text_idf.get(c) if pre.text_vocab[c] else np.ones(1)
        mode = "multi_hot" if m.text_mode == "binary_idf" else m.text_mode
        tv = keras.layers.TextVectorization(
            max_tokens=m.text_max_tokens,
            ngrams=m.text_ngrams,
            output_mode=mode,
            vocabulary=vocab,
            idf_weights=idf if mode == "tf_idf" else None,
            name=f"{c}_vectorizer",
        )
        bag = tv(inputs[c])
        if m.text_mode == "binary_idf":  # OOV slot first, weighted by the mean idf as Keras does
            bag = IdfWeight([float(np.mean(idf))] + list(map(float, idf)), name=f"{c}_idf")(bag)
        bag = keras.layers.UnitNormalization(name=f"{c}_unit")(bag)
        x = bag
        if 0 < m.text_deep_tokens < len(vocab):  # the deep path sees only the most frequent n-grams
            x = FirstColumns(m.text_deep_tokens + 1, name=f"{c}_frequent")(x)
        x = keras.layers.Dropout(m.dropout / 2)(x)
        parts.append(_text_column(cfg, c, x))
        if partial:
            own.append(_text_column(cfg, c, x, "_partial"))
        # the wide path: a linear model on the bag of n-grams (what Ridge on tf-idf does so well)
        wide.append(keras.layers.Dense(1, kernel_initializer="zeros", use_bias=False, name=f"{c}_wide")(bag))
        if alone:
            lone.append(keras.layers.Dense(1, kernel_initializer="zeros", use_bias=False, name=f"{c}_wide_alone")(bag))
    x_own = _text_top(m, own, "_partial") if partial else None
    return keras.Model(inputs, _with_wide(_text_top(m, parts), wide, lone, x_own), name="text_encoder")


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


def _augment(cfg: Config, x):
    """Random flips, shifts and zooms while training (identity in inference)."""
    seed = cfg.train.seed
    x = keras.layers.RandomFlip("horizontal", seed=seed, name="augment_flip")(x)
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed, name="augment_shift")(x)
    return keras.layers.RandomZoom(0.15, fill_mode="nearest", seed=seed, name="augment_zoom")(x)


def _scratch_features(cfg: Config, inp):
    """Decoded photo -> a small ResNet (a strided stem, one residual block per stage) -> pooled features."""
    m = cfg.model
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    if m.image_augment:  # training only (identity in inference): 7.6k photos are learnt by heart otherwise
        x = _augment(cfg, x)
    x = keras.layers.Conv2D(m.image_stem, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu")(x)
    for i, f in enumerate(m.image_filters):  # every stage halves the resolution: cheap on a CPU
        x = _residual(x, f, 2, f"stage{i}")
    return keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), keras.layers.GlobalMaxPooling2D()(x)])


def _fine_tuned_features(cfg: Config, inp):
    """Decoded photo -> the pretrained backbone, its last `image_trainable_blocks` blocks trained."""
    x = keras.layers.Rescaling(1.0, name="photo_float")(inp)  # uint8 -> float 0..255, the backbone's input
    if cfg.model.image_augment:
        x = _augment(cfg, x)
    return backbone(cfg)(x, training=False)  # BatchNorm keeps its ImageNet statistics (inference mode)


def _photo_network(cfg: Config) -> keras.Model:
    """One decoded photo [s, s, 3] -> its pooled features: the scratch ResNet or the fine-tuned backbone."""
    s = cfg.model.image_size
    inp = keras.Input(shape=(s, s, 3), dtype="uint8", name="photo")
    x = _fine_tuned_features(cfg, inp) if pretrained(cfg) else _scratch_features(cfg, inp)
    return keras.Model(inp, x, name="photo_network")


def _image_top(cfg: Config, x, given, suffix: str = ""):
    """The photos' pooled features -> the head's width (a learnt 'absent' vector without a photo)."""
    m = cfg.model
    if m.fusion == "sum":  # unit norm like each text column's bag: the photo cannot drown the rest at the start
        x = keras.layers.UnitNormalization(name=f"image_unit{suffix}")(x)
        x = keras.layers.Dense(fusion_width(cfg), name=f"image_project{suffix}")(x)
    else:
        x = keras.layers.Dense(m.image_units, activation="gelu", name=f"image_dense{suffix}")(x)
    return Absent(name=f"photo_absent{suffix}")([x, given])


def build_image_encoder(cfg: Config, partial: bool = False) -> keras.Model:
    """The photo branch: a listing's photos (decoded, or a frozen backbone's features, one per
    slot) and the photo mask -> the mean over its photos -> the head's width; a listing without a
    photo gets a learnt 'absent' vector instead.

    scratch: a small ResNet trained from scratch; efficientnet_lite*: the pretrained backbone,
    frozen (its features come precomputed, `training.features.photo`) or fine-tuned at the top.
    With `partial`, a second projection of the same pooled features for the incomplete listings'
    head: {"features", "features_partial"}.
    """
    m, p = cfg.model, cfg.model.max_photos
    s = m.image_size
    mask = keras.Input(shape=(p,), dtype="float32", name=PHOTO_MASK)
    if frozen_features(cfg):
        inp = keras.Input(shape=(p, feature_width(cfg)), dtype="float32", name=cfg.data.image)
        slots = inp
    else:
        inp = keras.Input(shape=(p, s, s, 3), dtype="uint8", name=cfg.data.image)
        slots = PresentOnly(_photo_network(cfg), name="photos")([inp, mask])  # only the slots with a photo
    x = MaskedMean(name="photo_mean")([slots, mask])
    given = keras.layers.GlobalMaxPooling1D(name="photo_given")(keras.layers.Reshape((p, 1))(mask))  # [batch, 1]
    x = keras.layers.Dropout(m.dropout, name="image_dropout")(x)
    out = _image_top(cfg, x, given)
    if partial:
        out = {"features": out, "features_partial": _image_top(cfg, x, given, "_partial")}
    return keras.Model({cfg.data.image: inp, PHOTO_MASK: mask}, out, name="image_encoder")
