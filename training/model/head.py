"""The training model: the chosen branches fused into one log-price head.

`build_model` wires four small steps: the branches' outputs (`_branch_outputs`), their fusion into
the first hidden layer (`_fuse`), the MLP head, one per member (`_deep_head`), and the sum or blend
with the linear read-out and the wide path (`_log_price`).
"""

from __future__ import annotations

import keras

from training.config import Config
from training.data.dataset import PHOTO_MASK
from training.features.preprocessing import Preprocessing
from training.model.encoders import build_image_encoder, build_metadata_encoder, build_text_encoder
from training.model.inputs import MODALITIES, active_modalities, fusion_width, model_columns, raw_inputs
from training.model.layers import CompleteOrPartial, GradientScale, GroupsGiven, MemberMean, SubsetBlend, SubsetWide


def _one_or_add(tensors: list, name: str):
    return keras.layers.Add(name=name)(tensors) if len(tensors) > 1 else tensors[0]


def wide_groups(cfg: Config, mods: tuple[str, ...]) -> list[str]:
    """The chosen groups with wide terms: metadata with a category, text with a column."""
    d = cfg.data
    return [g for g, cols in (("metadata", d.categorical), ("text", d.text)) if g in mods and cols]


def _per_pattern(cfg: Config, mods: tuple[str, ...]) -> bool:
    """Is the wide path solved per pattern of given groups (Ridge, frozen)?"""
    return cfg.model.wide_init == "ridge" and bool(wide_groups(cfg, mods))


def _branch_outputs(
    cfg: Config, pre: Preprocessing, mods: tuple[str, ...], inputs: dict
) -> tuple[list, dict, list, dict]:
    """Each chosen branch's features for the head, the wide path's linear terms by group ({group:
    {"wide", "wide_alone"}}), the terms column by column ([batch, columns] per branch), and the
    features of the branches with a projection of their own for the incomplete listings' head
    ({group: features}, `model.partial_projections`)."""
    d = cfg.data
    alone = _per_pattern(cfg, mods) and len(wide_groups(cfg, mods)) > 1
    own = set(cfg.model.partial_projections) if partial_head(cfg, mods) else set()
    outs = {}
    if "metadata" in mods:
        enc = build_metadata_encoder(cfg, pre, alone=alone and bool(d.categorical), partial="metadata" in own)
        outs["metadata"] = enc({c: inputs[c] for c in [*d.categorical, *d.numeric]})
    if "text" in mods:
        enc = build_text_encoder(cfg, pre, alone=alone, partial="text" in own)
        outs["text"] = enc({c: inputs[c] for c in d.text})
    if "image" in mods:
        out = build_image_encoder(cfg, partial="image" in own)(
            {d.image: inputs[d.image], PHOTO_MASK: inputs[PHOTO_MASK]}
        )
        outs["image"] = out if isinstance(out, dict) else {"features": out}
    branches = [out["features"] for out in outs.values()]
    wide = {g: out for g, out in outs.items() if "wide" in out}
    terms = [out["wide_terms"] for out in outs.values() if "wide_terms" in out]
    partial = {g: out["features_partial"] for g, out in outs.items() if "features_partial" in out}
    return branches, wide, terms, partial


def _given(cfg: Config, mods: tuple[str, ...], inputs: dict):
    """Which groups each listing gives, [batch, 3] (GroupsGiven), from the chosen groups' inputs."""
    d = cfg.data
    cols = [c for c in model_columns(cfg, mods) if c != d.image]
    return GroupsGiven(
        categorical=[c for c in d.categorical if c in cols],
        numeric=[c for c in d.numeric if c in cols],
        text=[c for c in d.text if c in cols],
        mask=PHOTO_MASK if PHOTO_MASK in cols else None,
        name="groups_given",
    )({c: inputs[c] for c in cols})


def _fuse(cfg: Config, branches: list, given, suffix: str = "") -> tuple:
    """The fused tensor, the skip input of the linear read-out, and the hidden widths still to come.

    The head also sees which groups the listing gives (`given`): a mask, not a fill value."""
    m = cfg.model
    if m.fusion == "sum":
        # the branches' linear projections add up to the first hidden layer (a one-hidden-layer
        # MLP over one-hot metadata, tf-idf text and image features, as the Mercari winners did);
        # with k members, k such layers side by side, each feeding its own head
        mask = keras.layers.Dense(fusion_width(cfg), use_bias=False, name=f"given_project{suffix}")(given)
        x = keras.layers.Activation("relu", name=f"fusion_relu{suffix}")(
            _one_or_add([*branches, mask], f"fusion{suffix}")
        )
        return x, x, m.fusion_units[1:]
    x = keras.layers.Concatenate(name=f"fusion{suffix}")([*branches, given])
    return x, x, m.fusion_units


def _deep_head(cfg: Config, x, widths: list[int], suffix: str = ""):
    """The MLP head: [batch, 1], or with k members k heads side by side ([batch, k])."""
    m, k = cfg.model, cfg.model.members
    if k > 1:  # [batch, k * width] -> [batch, k, width]: the members share no weight from here on
        x = keras.layers.Reshape((k, fusion_width(cfg) // k), name=f"members_split{suffix}")(x)
    for i, units in enumerate(widths):
        x = keras.layers.Dropout(m.dropout, name=f"head_dropout{i}{suffix}")(x)
        if k > 1:
            x = keras.layers.EinsumDense(
                "bkw,kwu->bku", (k, units), bias_axes="ku", activation="gelu", name=f"head_dense{i}{suffix}"
            )(x)
        else:
            x = keras.layers.Dense(units, activation="gelu", name=f"head_dense{i}{suffix}")(x)
    if k > 1:
        return keras.layers.EinsumDense("bku,ku->bk", (k,), bias_axes="k", name=f"head_out{suffix}")(x)
    return keras.layers.Dense(1, name=f"head_out{suffix}")(x)


def _linear(cfg: Config, pre: Preprocessing, skip, suffix: str = ""):
    return keras.layers.Dense(
        cfg.model.members,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(pre.target_mean),
        name=f"head_linear{suffix}",
    )(skip)


def partial_head(cfg: Config, mods: tuple[str, ...]) -> bool:
    """Does the model have a head of its own for incomplete listings? The full model of a config
    that trains with input dropout, when it has more than one group."""
    return cfg.train.input_dropout > 0 and mods == active_modalities(cfg) and len(mods) > 1


def _heads(cfg: Config, pre: Preprocessing, mods: tuple[str, ...], branches: list, given, own: dict) -> tuple:
    """The deep head and the linear read-out: one pair for complete listings, and (`partial_head`)
    another for incomplete ones, on the same branches' features. The complete head learns from
    complete listings alone; the partial head learns every subset from the copies input dropout
    adds (and from listings that are incomplete in the data). Each branch gets the share of its
    gradient `model.partial_gradient` names (none by default): with fusion = "concat" only the
    photo's, a quarter, as a photo alone must say the category, which the complete model's photo
    features, learnt beside the metadata, need not (synthetic, 2026-12-01: with none the photo
    alone scored 0.7433 against 0.6252 for the photo-only model; with a quarter into every branch,
    0.6256, but the complete listings lost 3.7%). With fusion = "sum" the branches' projections
    are the first hidden layer itself, which the partial head cannot do without. A branch named in
    `model.partial_projections` gives the partial head a projection of its own instead (`own`),
    on the same lookups, n-gram bags or photo features: the complete listings' projection is then
    not pulled towards the subsets, and more dropout copies cost the complete listings nothing."""
    x, skip, widths = _fuse(cfg, branches, given)
    deep, linear = _deep_head(cfg, x, widths), _linear(cfg, pre, skip)
    if not partial_head(cfg, mods):
        return deep, linear
    shares = [cfg.model.partial_gradient.get(g, 0.0) for g in mods]
    held = [
        own[g] if g in own else GradientScale(f, name=f"partial_{g}")(b)
        for g, f, b in zip(mods, shares, branches, strict=True)
    ]
    xs, ss, _ = _fuse(cfg, held, given, "_partial")
    deep_p, linear_p = _deep_head(cfg, xs, widths, "_partial"), _linear(cfg, pre, ss, "_partial")
    groups = [i for i, g in enumerate(MODALITIES) if g in mods]
    route = CompleteOrPartial(groups, name="deep_route")([given, deep, deep_p])
    return route, CompleteOrPartial(groups, name="linear_route")([given, linear, linear_p])


def _log_price(cfg: Config, mods: tuple[str, ...], deep, linear, wide: dict, given):
    """The deep head, the linear read-out and the wide path, summed (or blended) into the log price.

    With Ridge, the wide path is the one of the listing's pattern of given groups (SubsetWide);
    blended, the deep weight is the one of its subset (SubsetBlend)."""
    m, k = cfg.model, cfg.model.members
    if not _per_pattern(cfg, mods):  # wide terms trained with the rest (sgd), or no wide path
        terms = [w["wide"] for w in wide.values()]
        if k > 1:
            return MemberMean(name="log_price")(keras.layers.Add(name="members_log_price")([deep, linear, *terms]))
        return keras.layers.Add(name="log_price")([deep, linear, *terms])
    groups = wide_groups(cfg, mods)
    full = _one_or_add([wide[g]["wide"] for g in groups], "wide_sum")
    meta_alone = wide["metadata"].get("wide_alone", full) if "metadata" in wide else full
    text_alone = wide["text"].get("wide_alone", full) if "text" in wide else full
    subset_wide = SubsetWide(groups, name="subset_wide")([given, full, meta_alone, text_alone])
    if m.blend > 0:
        # wide & deep as an ensemble: the frozen Ridge and the deep network, each a whole estimate
        deep_log_price = keras.layers.Add(name="deep_log_price")([deep, linear])
        if k > 1:
            deep_log_price = MemberMean(name="deep_mean")(deep_log_price)
        return SubsetBlend(m.blend, name="log_price")([deep_log_price, subset_wide, given])
    wide_log_price = keras.layers.Reshape((2, 1))(subset_wide)
    wide_log_price = keras.layers.Cropping1D((0, 1))(wide_log_price)
    wide_log_price = keras.layers.Flatten(name="wide_log_price")(wide_log_price)
    if k > 1:
        return MemberMean(name="log_price")(keras.layers.Add(name="members_log_price")([deep, linear, wide_log_price]))
    # wide & deep as one sum: the pattern's Ridge (category offsets, n-gram weights) adds in
    return keras.layers.Add(name="log_price")([deep, linear, wide_log_price])


def build_model(cfg: Config, pre: Preprocessing, modalities: tuple[str, ...] = MODALITIES) -> keras.Model:
    """The training model: the chosen branches, fused, into one log-price head."""
    mods = active_modalities(cfg, modalities)
    if not mods:
        raise ValueError(f"no inputs for modalities {modalities}")
    inputs = raw_inputs(cfg, decoded_image=True)
    branches, wide, terms, own = _branch_outputs(cfg, pre, mods, inputs)
    given = _given(cfg, mods, inputs)
    deep, linear = _heads(cfg, pre, mods, branches, given, own)
    log_price = _log_price(cfg, mods, deep, linear, wide, given)
    used = {c: inputs[c] for c in model_columns(cfg, mods)}
    model = keras.Model(used, log_price, name="price_model" if mods == active_modalities(cfg) else "_".join(mods))
    # What the log price is the sum of: each column's wide term, then the log price itself (the
    # rest, the deep part, is their difference): training/model/embedding.py makes the comparables'
    # embedding of it. A symbolic tensor of this graph, outside the trained model's path.
    model.price_parts = keras.layers.Concatenate(name="price_parts")([*terms, log_price]) if terms else log_price
    model.price_part_names = wide_columns(cfg, mods) + ["log_price"]
    model.full_subset = subset_index(mods)  # SubsetBlend's index of a listing that gives every chosen group
    return model


def wide_columns(cfg: Config, mods: tuple[str, ...]) -> list[str]:
    """The columns with a wide term, in the order of `price_parts`."""
    d = cfg.data
    return ([*d.categorical] if "metadata" in mods else []) + ([*d.text] if "text" in mods else [])


def subset_index(groups) -> int:
    """SubsetBlend's index of a subset of given groups: 4 * metadata + 2 * text + image."""
    return 4 * ("metadata" in groups) + 2 * ("text" in groups) + ("image" in groups)
