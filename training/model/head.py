"""The training model: the chosen branches fused into one log-price head.

`build_model` wires four small steps: the branches' outputs (`_branch_outputs`), their fusion into
the first hidden layer (`_fuse`), the MLP head, one per member (`_deep_head`), and the sum or blend
with the linear read-out and the wide path (`_log_price`).
"""

from __future__ import annotations

import keras

from training.config import Config
from training.features.preprocessing import Preprocessing
from training.model.encoders import build_image_encoder, build_metadata_encoder, build_text_encoder
from training.model.inputs import MODALITIES, active_modalities, fusion_width, model_columns, raw_inputs
from training.model.layers import MemberMean, WideDeepBlend


def _one_or_add(tensors: list, name: str):
    return keras.layers.Add(name=name)(tensors) if len(tensors) > 1 else tensors[0]


def _branch_outputs(cfg: Config, pre: Preprocessing, mods: tuple[str, ...], inputs: dict) -> tuple[list, list, list]:
    """Each chosen branch's features for the head, the wide path's linear terms (one per branch),
    and the same terms column by column ([batch, columns] per branch)."""
    d = cfg.data
    outs = []
    if "metadata" in mods:
        outs.append(build_metadata_encoder(cfg, pre)({c: inputs[c] for c in [*d.categorical, *d.numeric]}))
    if "text" in mods:
        outs.append(build_text_encoder(cfg, pre)({c: inputs[c] for c in d.text}))
    branches = [out["features"] for out in outs]
    wide = [out["wide"] for out in outs if "wide" in out]
    terms = [out["wide_terms"] for out in outs if "wide_terms" in out]
    if "image" in mods:
        branches.append(build_image_encoder(cfg)(inputs[d.image]))
    return branches, wide, terms


def _fuse(cfg: Config, branches: list) -> tuple:
    """The fused tensor, the skip input of the linear read-out, and the hidden widths still to come."""
    m = cfg.model
    if m.fusion == "sum":
        # the branches' linear projections add up to the first hidden layer (a one-hidden-layer
        # MLP over one-hot metadata, tf-idf text and image features, as the Mercari winners did);
        # with k members, k such layers side by side, each feeding its own head
        x = keras.layers.Activation("relu", name="fusion_relu")(_one_or_add(branches, "fusion"))
        return x, x, m.fusion_units[1:]
    x = keras.layers.Concatenate(name="fusion")(branches) if len(branches) > 1 else branches[0]
    return x, x, m.fusion_units


def _deep_head(cfg: Config, x, widths: list[int]):
    """The MLP head: [batch, 1], or with k members k heads side by side ([batch, k])."""
    m, k = cfg.model, cfg.model.members
    if k > 1:  # [batch, k * width] -> [batch, k, width]: the members share no weight from here on
        x = keras.layers.Reshape((k, fusion_width(cfg) // k), name="members_split")(x)
    for i, units in enumerate(widths):
        x = keras.layers.Dropout(m.dropout, name=f"head_dropout{i}")(x)
        if k > 1:
            x = keras.layers.EinsumDense(
                "bkw,kwu->bku", (k, units), bias_axes="ku", activation="gelu", name=f"head_dense{i}"
            )(x)
        else:
            x = keras.layers.Dense(units, activation="gelu", name=f"head_dense{i}")(x)
    if k > 1:
        return keras.layers.EinsumDense("bku,ku->bk", (k,), bias_axes="k", name="head_out")(x)
    return keras.layers.Dense(1, name="head_out")(x)


def _log_price(cfg: Config, deep, linear, wide: list):
    """The deep head, the linear read-out and the wide terms, summed (or blended) into the log price."""
    m, k = cfg.model, cfg.model.members
    if wide and m.wide_init == "ridge" and m.blend > 0:
        # wide & deep as an ensemble: the frozen Ridge and the deep network, each a whole estimate
        deep_log_price = keras.layers.Add(name="deep_log_price")([deep, linear])
        if k > 1:
            deep_log_price = MemberMean(name="deep_mean")(deep_log_price)
        return WideDeepBlend(m.blend, name="log_price")([deep_log_price, _one_or_add(wide, "wide_sum")])
    if k > 1:
        return MemberMean(name="log_price")(keras.layers.Add(name="members_log_price")([deep, linear, *wide]))
    # wide & deep as one sum: the branches' linear terms (category offsets, n-gram weights) add in
    return keras.layers.Add(name="log_price")([deep, linear, *wide])


def build_model(cfg: Config, pre: Preprocessing, modalities: tuple[str, ...] = MODALITIES) -> keras.Model:
    """The training model: the chosen branches, fused, into one log-price head."""
    mods = active_modalities(cfg, modalities)
    if not mods:
        raise ValueError(f"no inputs for modalities {modalities}")
    inputs = raw_inputs(cfg, decoded_image=True)
    branches, wide, terms = _branch_outputs(cfg, pre, mods, inputs)
    x, skip, widths = _fuse(cfg, branches)
    deep = _deep_head(cfg, x, widths)
    linear = keras.layers.Dense(
        cfg.model.members,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(pre.target_mean),
        name="head_linear",
    )(skip)
    log_price = _log_price(cfg, deep, linear, wide)
    used = {c: inputs[c] for c in model_columns(cfg, mods)}
    model = keras.Model(used, log_price, name="price_model" if mods == active_modalities(cfg) else "_".join(mods))
    # What the log price is the sum of: each column's wide term, then the log price itself (the
    # rest, the deep part, is their difference): training/model/embedding.py makes the comparables'
    # embedding of it. A symbolic tensor of this graph, outside the trained model's path.
    model.price_parts = keras.layers.Concatenate(name="price_parts")([*terms, log_price]) if terms else log_price
    model.price_part_names = wide_columns(cfg, mods) + ["log_price"]
    return model


def wide_columns(cfg: Config, mods: tuple[str, ...]) -> list[str]:
    """The columns with a wide term, in the order of `price_parts`."""
    d = cfg.data
    return ([*d.categorical] if "metadata" in mods else []) + ([*d.text] if "text" in mods else [])
