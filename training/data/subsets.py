"""Subsets of the input groups (metadata, text, photo): a frame with some groups removed, and which
groups each row gives.

A removed group is sent exactly as a request that leaves it out: categories and texts "", numbers
NaN, no photo. The evaluation's any-subset table, the per-subset blend and the per-subset range all
remove groups this way.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from common.card import GROUPS as MODALITIES
from training.config import Config
from training.data.dataset import PHOTO_FEATURES


def subsets(cfg: Config, mods: tuple[str, ...] | None = None) -> list[tuple[str, ...]]:
    """Every non-empty subset of the chosen groups (all the config has by default), largest first:
    7 with all three."""
    d = cfg.data
    has = {"metadata": bool(d.categorical or d.numeric), "text": bool(d.text), "image": bool(d.image)}
    mods = tuple(g for g in MODALITIES if has[g] and (mods is None or g in mods))
    return [c for r in range(len(mods), 0, -1) for c in combinations(mods, r)]


def subset_name(groups) -> str:
    """ "metadata+image": the groups in their fixed order, joined by +."""
    return "+".join(g for g in MODALITIES if g in set(groups))


def without(cfg: Config, df: pd.DataFrame, keep) -> pd.DataFrame:
    """A copy of `df` whose groups outside `keep` are missing ("" / NaN / no photo)."""
    d, keep = cfg.data, set(keep)
    out = df.copy()
    if "metadata" not in keep:
        for c in d.categorical:
            out[c] = ""
        for c in d.numeric:
            out[c] = np.float32("nan")
    if "text" not in keep:
        for c in d.text:
            out[c] = ""
    if "image" not in keep and d.image:
        out[d.image] = ""
        if PHOTO_FEATURES in out.columns:
            out[PHOTO_FEATURES] = [np.zeros_like(v) for v in out[PHOTO_FEATURES]]
    return out


def given(cfg: Config, df: pd.DataFrame) -> pd.DataFrame:
    """Per row, which groups it gives (bool columns metadata, text, image): the rule of the model's
    GroupsGiven layer (a category or text not "", a finite number, one photo)."""
    d = cfg.data
    n = len(df)
    meta = np.zeros(n, bool)
    for c in d.categorical:
        meta |= df[c].astype(str).to_numpy() != ""
    for c in d.numeric:
        meta |= np.isfinite(df[c].to_numpy(dtype="float64"))
    text = np.zeros(n, bool)
    for c in d.text:
        text |= df[c].astype(str).to_numpy() != ""
    image = df[d.image].astype(str).str.strip().to_numpy() != "" if d.image else np.zeros(n, bool)
    return pd.DataFrame({"metadata": meta, "text": text, "image": image}, index=df.index)


def given_index(cfg: Config, df: pd.DataFrame) -> np.ndarray:
    """Per row, SubsetBlend's index of its given groups: 4 * metadata + 2 * text + image."""
    g = given(cfg, df)
    return (4 * g["metadata"] + 2 * g["text"] + g["image"]).to_numpy(dtype="int64")


def index_name(index: int) -> str:
    """SubsetBlend's index -> the subset's name ("" for none)."""
    return subset_name([g for g, bit in zip(MODALITIES, (4, 2, 1), strict=True) if index & bit])


def group_columns(cfg: Config, group: str) -> list[str]:
    """The columns of one input group."""
    d = cfg.data
    return {"metadata": [*d.categorical, *d.numeric], "text": list(d.text), "image": [d.image] if d.image else []}[
        group
    ]
