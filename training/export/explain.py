"""What drove the price: the neutral inputs that the service's occlusion compares against.

The service scores an item beside copies of it in which one modality's inputs are replaced by a
neutral baseline (metadata: each category column's most frequent training value and each number
column's training median; text: the empty string; the photo: the per-pixel mean of a sample of
training photos at the model's image size). The contribution of a modality is the price minus the
price without it. This module computes that baseline and the card's `explain` block.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

from common.card import MODALITY_OF_ROLE
from training.config import Config
from training.data.table import photo_list

IMAGE_SAMPLE = 256  # training photos averaged into the neutral photo
METHOD = (
    "occlusion: the item is scored in one batched call beside one copy per modality whose inputs are "
    "replaced by the neutral baseline below (categorical: most frequent training value; numeric: "
    "training median; text: empty; image: per-pixel mean of up to 256 training photos at the model's "
    "image size). contribution = price - price with that modality neutral (in the currency); "
    "share = |contribution| / sum of |contributions|. Contributions need not add up to the price: "
    "the modalities interact in the fused head."
)


def most_frequent(values: pd.Series) -> str:
    counts = values.astype(str).value_counts()
    if counts.empty:
        return ""
    top = counts.max()  # ties: the alphabetically first, so the choice does not depend on row order
    return str(sorted(counts.index[counts == top])[0])


def median(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


def mean_photo(paths: list[str], size: int, sample: int = IMAGE_SAMPLE, seed: int = 0) -> bytes:
    """PNG bytes of the per-pixel mean of up to `sample` photos, decoded as the model decodes them."""
    import tensorflow as tf
    from PIL import Image

    from training.data.images import decode_image

    rng = np.random.default_rng(seed)
    chosen = [paths[i] for i in sorted(rng.choice(len(paths), size=min(sample, len(paths)), replace=False))]
    total = np.zeros((size, size, 3), dtype="float64")
    for path in chosen:
        total += decode_image(tf.io.read_file(path), size).numpy()
    mean = np.clip(np.round(total / max(1, len(chosen))), 0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(mean, "RGB").save(out, format="PNG")
    return out.getvalue()


def explain_card(cfg: Config, train: pd.DataFrame) -> dict[str, Any]:
    """The card's `explain` block: the method and one neutral value per input, by input name."""
    d = cfg.data
    baseline: dict[str, Any] = {}
    for c in d.categorical:
        baseline[c] = most_frequent(train[c])
    for c in d.numeric:
        baseline[c] = median(train[c])  # None (JSON null): no finite value seen, sent as missing (NaN)
    for c in d.text:
        baseline[c] = ""
    block: dict[str, Any] = {"method": METHOD, "baseline": baseline}
    if d.image:
        size = cfg.model.image_size
        firsts = [photos[0] for photos in map(photo_list, train[d.image].astype(str)) if photos]
        png = mean_photo(firsts, size, seed=cfg.train.seed)
        baseline[d.image] = base64.b64encode(png).decode("ascii")
        block["image_format"] = "png, base64"
        block["image_size"] = [size, size]
    return block


__all__ = ["IMAGE_SAMPLE", "METHOD", "MODALITY_OF_ROLE", "explain_card", "mean_photo", "median", "most_frequent"]
