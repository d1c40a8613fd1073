"""Schemathesis hooks of the fuzz (loaded through SCHEMATHESIS_HOOKS by reliability/fuzz.py).

For the JSON schema any string is an `image`, so nearly every generated body is refused with 422
before it reaches the model. Here half of the generated bodies get a real photo (random size,
colour mode and format) in place of the image when it has the right type, and in every slot of a
list of photos (`images`, or several `image` file parts, on a card that takes several), so the
fuzz also drives the decoding, conversion, pooling and model path with schema-valid but unusual
values in every other field (schemathesis leaves optional fields out on its own). A body whose
image has the wrong type (a negative case) is left as it is.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import schemathesis
from hypothesis import strategies as st
from PIL import Image


@st.composite
def photos(draw: st.DrawFn) -> bytes:
    width, height = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    fmt = draw(st.sampled_from(["JPEG", "PNG", "WEBP", "GIF"]))
    modes = {
        "JPEG": ["RGB", "L", "CMYK"],
        "PNG": ["RGB", "RGBA", "L", "LA", "P"],
        "WEBP": ["RGB", "RGBA"],
        "GIF": ["P", "L"],
    }
    mode = draw(st.sampled_from(modes[fmt]))
    colour = draw(st.tuples(*[st.integers(0, 255)] * 3))
    image = Image.new("RGB", (width, height), colour)
    if width > 1 and height > 1:
        image.paste(tuple(255 - c for c in colour), (0, 0, width // 2, height // 2))
    out = io.BytesIO()
    image.convert(mode).save(out, format=fmt)
    return out.getvalue()


def _as(value: Any, photo: bytes) -> Any:
    """``photo`` in the place of a generated string (base64) or bytes (a file part); else ``value``."""
    if isinstance(value, str):
        return base64.b64encode(photo).decode()
    if isinstance(value, bytes | bytearray):
        return photo
    return value


def _with_photo(item: Any, photo: bytes) -> Any:
    """The photo in ``image`` and in every slot of a list of photos (``images`` in JSON, several
    ``image`` file parts in a form), their number kept: a list longer than ``max_photos`` is
    then refused for its length only."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    for name in ("image", "images"):
        value = item.get(name)
        if isinstance(value, list):
            out[name] = [_as(v, photo) for v in value]
        elif name == "image" and name in item:
            out[name] = _as(value, photo)
    return out


def _replace(body: Any, photo: bytes) -> Any:
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return {**body, "items": [_with_photo(item, photo) for item in body["items"]]}
    return _with_photo(body, photo)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
    return st.one_of(st.just(body), photos().map(lambda photo: _replace(body, photo)))
