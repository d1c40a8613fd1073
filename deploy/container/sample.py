"""The request the container test sends, and the price it must get back: raw inputs taken from
the model card and a small JPEG, priced by the same SavedModel in this process (the reference).

Needs the development environment (tensorflow, pillow) for the reference prediction.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

REL_TOL = 1e-4
# The API answers prices rounded to cents, so a price may also be up to half a cent off.
CENT_ROUNDING = 0.005


def sample_image() -> bytes:
    """A small deterministic JPEG photo stand-in (the same bytes go to the container and here)."""
    from PIL import Image

    picture = Image.new("RGB", (96, 80))
    picture.putdata([((x * 8) % 256, (y * 5) % 256, (x * y) % 256) for y in range(80) for x in range(96)])
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def sample_fields(card: dict) -> dict[str, object]:
    """One plausible raw value per non-image input, taken from the model card."""
    fields: dict[str, object] = {}
    for spec in card["inputs"]:
        if spec.get("role") == "image":
            continue
        examples = spec.get("examples") or []
        if examples:
            value = examples[0]
        elif spec.get("role") == "numeric":
            value = spec.get("mean", spec.get("min", 1.0))
        elif spec.get("vocabulary"):
            value = spec["vocabulary"][0]
        else:
            value = "good condition"
        fields[spec["name"]] = float(value) if spec.get("role") == "numeric" else str(value)
    return fields


def image_input(card: dict) -> str:
    return next(
        (spec["name"] for spec in card["inputs"] if spec.get("role") == "image"),
        "image",
    )


def reference_price(version_dir: Path, card: dict, fields: dict, picture: bytes) -> float:
    """The price the SavedModel itself gives for the same raw inputs, outside the container."""
    from common.quiet import import_tensorflow

    import_tensorflow()  # the host side runs in the venv: no native start-up lines
    import tensorflow as tf

    model = tf.saved_model.load(str(version_dir))
    serve = model.signatures[card.get("signature", "serving_default")]
    feeds = {}
    for spec in card["inputs"]:
        name = spec["name"]
        if spec.get("role") == "image":  # with max_photos, [batch, max_photos]: the other slots "" (empty)
            slots = [picture] + [b""] * (spec["max_photos"] - 1) if spec.get("max_photos") else picture
            feeds[name] = tf.constant([slots], dtype=tf.string)
        elif spec.get("dtype") == "float32" or spec.get("role") == "numeric":
            feeds[name] = tf.constant([float(fields[name])], dtype=tf.float32)
        else:
            feeds[name] = tf.constant([str(fields[name]).encode()], dtype=tf.string)
    return float(serve(**feeds)[card.get("output", "price")].numpy()[0])


def same_price(answered: float, expected: float) -> bool:
    """Equal within 1e-4 relative, or within the API's rounding to cents."""
    return abs(answered - expected) <= max(REL_TOL * abs(expected), CENT_ROUNDING + 1e-9)


def answered_price(payload: object) -> float:
    price = payload["price"] if isinstance(payload, dict) else payload
    if isinstance(price, list):
        price = price[0]
    return float(price)


@dataclass
class Sample:
    """One request's raw inputs and what the SavedModel answers for them on the host."""

    version: str
    card: dict
    fields: dict
    picture: bytes
    expected: float

    def json_body(self) -> dict:
        body = dict(self.fields)
        body[image_input(self.card)] = base64.b64encode(self.picture).decode()
        return body

    def form(self) -> dict:
        return {k: repr(v) if isinstance(v, float) else v for k, v in self.fields.items()}


def make_sample(version_dir: Path, card: dict) -> Sample:
    """The sample request for the model in ``version_dir``, with its reference price."""
    fields, picture = sample_fields(card), sample_image()
    return Sample(version_dir.name, card, fields, picture, reference_price(version_dir, card, fields, picture))
