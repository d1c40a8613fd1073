"""The traffic of the soak (reliability/soak.py): about 108 kinds of request, each with its weight
in the mix and the statuses it may get. About 60% are valid (JSON and uploads with photos of
every kind the corpus prices, batches, every GET route); 40% are refused for a known reason (the
corpus's refused photos, malformed, oversized or mistyped bodies, unknown routes and methods).
The listings with missing inputs and several photos are added by reliability/shapes.py."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.corpus import PRICE, BadImage, bad_images, encode, photo


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix, ready to send, and the statuses it may get.

    ``missing`` (a price): the ``missing`` list each answer must carry, one per item (one for
    /v1/predict and /upload, one per item of a batch); ``loc`` (a refusal): the ``loc`` one of
    its ``errors`` must have (a bad photo among several: ``["images", 1]``). None: not checked.
    """

    name: str
    weight: float
    method: str
    path: str
    expected: frozenset[int]
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    missing: tuple[tuple[str, ...], ...] | None = None
    loc: tuple[str | int, ...] | None = None

    @property
    def valid(self) -> bool:
        return self.expected == frozenset({200})

    def check(self, status: int, body: bytes) -> str | None:
        """What is wrong with the answer ``status``, ``body`` to this request (None: nothing)."""
        if status not in self.expected:
            return f"status {status}, expected {sorted(self.expected)}"
        if status == 200 and self.missing is not None:
            try:
                answer = json.loads(body)
                answers = answer["predictions"] if "predictions" in answer else [answer]
                got = tuple(tuple(a.get("missing", ("<absent>",))) for a in answers)
            except (ValueError, TypeError, KeyError) as exc:
                return f"answer is not a prediction ({type(exc).__name__})"
            if got != self.missing:
                return f"missing {[list(m) for m in got]}, expected {[list(m) for m in self.missing]}"
        if status >= 400 and self.loc is not None:
            try:
                locs = [tuple(e["loc"]) for e in json.loads(body)["errors"]]
            except (ValueError, TypeError, KeyError) as exc:
                return f"refusal without errors[].loc ({type(exc).__name__})"
            if self.loc not in locs:
                return f"errors at {[list(loc) for loc in locs]}, expected one at {list(self.loc)}"
        return None


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
    optional = bool((card.get("served") or {}).get("optional_inputs"))  # a card with a `missing` block
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
        form = as_form(entry.data, entry.filename, entry.media_type)
        kinds.append(_refused_upload(entry, 4 / len(refused), form, optional, image_names))
    bad = frozenset({422})
    good = with_image(photos[0])
    numeric = next((s["name"] for s in card["inputs"] if s["role"] == "numeric"), None)
    first = card["inputs"][0]["name"]
    add("invalid JSON", 3, "POST", "/v1/predict", bad, (b'{"brand": "zara", ', {"content-type": "application/json"}))
    kinds.append(_missing_field(optional, {k: v for k, v in good.items() if k != first}, first))
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


def _missing_field(optional: bool, body: dict[str, Any], left_out: str) -> Kind:
    """A valid item without its first input: priced without it on a card with a `missing` block,
    refused with 422 naming it on an older card (every input required)."""
    content = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if optional:
        return Kind(
            "missing field", 3, "POST", "/v1/predict", frozenset({200}), content, headers, missing=((left_out,),)
        )
    return Kind("missing field", 3, "POST", "/v1/predict", frozenset({422}), content, headers, loc=(left_out,))


def _refused_upload(
    entry: BadImage, weight: float, form: tuple[bytes, dict[str, str]], optional: bool, image_names: list[str]
) -> Kind:
    """A refused corpus photo as the form's file part: its 4xx; but on a card with a `missing`
    block an empty part is a file field left empty, so no photo (priced without it)."""
    if optional and not entry.data:
        return Kind(f"upload {entry.name}: no photo", weight, "POST", "/v1/predict/upload", frozenset({200}), *form,
                    missing=(tuple(image_names),))  # fmt: skip
    return Kind(f"refused upload {entry.name}", weight, "POST", "/v1/predict/upload", frozenset({entry.status}), *form)
