"""The training model: the chosen branches fused into one log-price head."""

from __future__ import annotations

import keras

from training.config import Config
from training.features.preprocessing import Preprocessing
from training.model.encoders import build_image_encoder, build_metadata_encoder, build_text_encoder
from training.model.inputs import MODALITIES, active_modalities, fusion_width, model_columns, raw_inputs
from training.model.layers import MemberMean, WideDeepBlend


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
