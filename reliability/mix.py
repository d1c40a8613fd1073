"""The traffic of the soak (reliability/soak.py): about 108 kinds of request, each with its weight
in the mix and the statuses it may get. About 60% are valid (JSON and uploads with photos of
every kind the corpus prices, batches, every GET route); 40% are refused for a known reason (the
corpus's refused photos, malformed, oversized or mistyped bodies, unknown routes and methods)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.corpus import PRICE, bad_images, encode, photo


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix, ready to send, and the statuses it may get."""

    name: str
    weight: float
    method: str
    path: str
    expected: frozenset[int]
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.expected == frozenset({200})


def item_from_card(card: dict[str, Any]) -> dict[str, Any]:
    """A valid item for the served model (image left out), from its card."""
    item: dict[str, Any] = {}
    for spec in card["inputs"]:
        role, name = spec["role"], spec["name"]
        if role == "categorical":
            item[name] = (spec.get("examples") or spec.get("vocabulary") or ["unknown"])[0]
        elif role == "numeric":
            low, high = spec.get("min", 0.0), spec.get("max", 1.0)
            item[name] = round((low + high) / 2, 3)
        elif role == "text":
            item[name] = (spec.get("examples") or ["A nice item, barely worn."])[0]
    return item


def build_mix(card: dict[str, Any]) -> list[Kind]:
    """The requests of the soak: about 60% valid, 40% refused for a known reason."""
    image_names = [s["name"] for s in card["inputs"] if s["role"] == "image"]
    base = item_from_card(card)

    def with_image(data: bytes) -> dict[str, Any]:
        return {**base, **{name: base64.b64encode(data).decode() for name in image_names}}

    def as_json(body: Any) -> tuple[bytes, dict[str, str]]:
        return json.dumps(body).encode(), {"content-type": "application/json"}

    def as_form(
        data: bytes, filename: str = "photo.jpg", media_type: str = "image/jpeg"
    ) -> tuple[bytes, dict[str, str]]:
        request = httpx.Request(
            "POST",
            "http://127.0.0.1/",
            data={k: str(v) for k, v in base.items()},
            files={name: (filename, data, media_type) for name in image_names},
        )
        return request.read(), {"content-type": request.headers["content-type"]}

    ok = frozenset({200})
    kinds: list[Kind] = []

    def add(name: str, weight: float, method: str, path: str, expected: frozenset[int], body=None) -> None:
        content, headers = body if body is not None else (None, {})
        kinds.append(Kind(name, weight, method, path, expected, content, headers))

    photos = [encode(photo((96, 96), seed=s, block=4), "JPEG", quality=85) for s in range(8)]
    for index, data in enumerate(photos):
        add(f"predict json jpeg #{index}", 20 / len(photos), "POST", "/v1/predict", ok, as_json(with_image(data)))
        add(f"predict upload jpeg #{index}", 10 / len(photos), "POST", "/v1/predict/upload", ok, as_form(data))
    unusual = [e for e in bad_images() if e.status == PRICE]
    refused = [e for e in bad_images() if e.status != PRICE]
    for entry in unusual:
        add(f"predict json {entry.name}", 6 / len(unusual), "POST", "/v1/predict", ok, as_json(with_image(entry.data)))
        add(f"predict upload {entry.name}", 3 / len(unusual), "POST", "/v1/predict/upload", ok,
            as_form(entry.data, entry.filename, entry.media_type))  # fmt: skip
    batch = {"items": [with_image(photos[i % len(photos)]) for i in range(8)]}
    add("batch of 8", 4, "POST", "/v1/predict/batch", ok, as_json(batch))
    for path, weight in (
        ("/v1/model", 3),
        ("/readyz", 2),
        ("/healthz", 2),
        ("/metrics", 1),
        ("/", 1),
        ("/openapi.json", 1),
    ):
        add(f"GET {path}", weight, "GET", path, ok)

    for entry in refused:
        status = frozenset({entry.status})
        add(
            f"refused json {entry.name}",
            8 / len(refused),
            "POST",
            "/v1/predict",
            status,
            as_json(with_image(entry.data)),
        )
        add(f"refused upload {entry.name}", 4 / len(refused), "POST", "/v1/predict/upload", status,
            as_form(entry.data, entry.filename, entry.media_type))  # fmt: skip
    bad = frozenset({422})
    good = with_image(photos[0])
    numeric = next((s["name"] for s in card["inputs"] if s["role"] == "numeric"), None)
    first = card["inputs"][0]["name"]
    add("invalid JSON", 3, "POST", "/v1/predict", bad, (b'{"brand": "zara", ', {"content-type": "application/json"}))
    add("missing field", 3, "POST", "/v1/predict", bad, as_json({k: v for k, v in good.items() if k != first}))
    add("unknown field", 2, "POST", "/v1/predict", bad, as_json({**good, "colour2": "red"}))
    if numeric:
        add("number out of range", 2, "POST", "/v1/predict", bad, as_json({**good, numeric: 1e12}))
        add("boolean for a number", 1, "POST", "/v1/predict", bad, as_json({**good, numeric: True}))
        nan = json.dumps({**good, numeric: float("nan")}).encode()
        add("NaN", 1, "POST", "/v1/predict", bad, (nan, {"content-type": "application/json"}))
    plain = (json.dumps(good).encode(), {"content-type": "text/plain"})
    add("wrong content type", 3, "POST", "/v1/predict", frozenset({415}), plain)
    add("JSON to upload", 1, "POST", "/v1/predict/upload", frozenset({415}), as_json(good))
    add("empty batch", 1, "POST", "/v1/predict/batch", bad, as_json({"items": []}))
    add("batch of 10,000", 0.3, "POST", "/v1/predict/batch", bad, as_json({"items": [{"x": 1}] * 10_000}))
    nested = ("[" * 20_000 + "]" * 20_000).encode()
    add("deeply nested JSON", 1, "POST", "/v1/predict", bad, (nested, {"content-type": "application/json"}))
    fields = ("{" + ",".join(f'"k{i}":0' for i in range(100_000)) + "}").encode()
    add("100,000 fields", 0.3, "POST", "/v1/predict", bad, (fields, {"content-type": "application/json"}))
    long_texts = {s["name"]: "x" * 1_000_000 for s in card["inputs"] if s["role"] == "text"}
    add("1 MB texts", 0.5, "POST", "/v1/predict", bad, as_json({**good, **long_texts}))
    add("unknown route", 1, "GET", "/v2/predict", frozenset({404}))
    add("wrong method", 1, "DELETE", "/v1/predict", frozenset({405}))
    return kinds
