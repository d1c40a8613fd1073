"""Issue 17's service side over a hand-built model of the new format (``exported_multi``: every
input optional, photos as a ``[batch, 3]`` argument): any input may be missing on every route,
several photos give the same price through JSON and multipart, the range is that of the subset
given (``interval.by_inputs``), a group not given contributes "missing", the 4xx rules, and the
older card format keeps requiring every input."""

from __future__ import annotations

import base64
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.card import ServableCard
from service.main import create_app
from service.prepare import prepare_form, prepare_json
from service.schemas.errors import InputError
from service.schemas.inputs import input_groups, input_specs
from service.schemas.request import Limits, ModelSchema
from tests.service.conftest import MAX_PHOTOS
from tests.support.service_testkit import (
    BY_INPUTS,
    DEFAULT_INPUTS,
    EXPLAIN_BLOCK,
    GOOD_ITEM,
    NEUTRAL,
    RANGE_QUANTILES,
    SUBSET_INTERVAL_BLOCK,
    edit_card,
    grey_png,
    image_bytes,
    install_version,
    make_settings,
    wait_ready,
    with_blocks,
)

META = ("brand", "category", "condition", "size", "colour", "age_months")
TEXT = ("title", "description")
GROUPS = {"metadata": list(META), "text": list(TEXT), "image": ["image"]}
ROLES = {spec["name"]: spec["role"] for spec in DEFAULT_INPUTS}
PHOTO_A = image_bytes("JPEG", seed=1)
PHOTO_B = image_bytes("PNG", seed=5)
PHOTO_C = image_bytes("JPEG", size=(40, 24), seed=8)
NEEDED = (
    "at least one input is needed; this model's inputs are: brand, category, condition, size, colour, "
    "age_months, title, description, image (or images)"
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def multi_client(exported_multi: Path, tmp_path_factory: pytest.TempPathFactory):
    model_dir = tmp_path_factory.mktemp("multi") / "price"
    install_version(exported_multi, model_dir, 1, edit=with_blocks(SUBSET_INTERVAL_BLOCK, EXPLAIN_BLOCK))
    with TestClient(create_app(make_settings(model_dir))) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def direct(exported_multi: Path):
    """``direct(rows)`` -> the SavedModel's own prices; a row holds the model's values (photos as a
    list of bytes, padded here with "" to the 3 slots)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(exported_multi)).signatures["serving_default"]

    def call(rows: list[dict[str, Any]]) -> list[float]:
        feeds = {}
        for name, role in ROLES.items():
            values = [row[name] for row in rows]
            if role == "numeric":
                feeds[name] = tf.constant(values, dtype=tf.float32)
            elif role == "image":
                feeds[name] = tf.constant([v + [b""] * (MAX_PHOTOS - len(v)) for v in values], dtype=tf.string)
            else:
                feeds[name] = tf.constant(values, dtype=tf.string)
        return [float(p) for p in signature(**feeds)["price"].numpy()]

    return call


def model_row(values: dict[str, Any], photos: list[bytes]) -> dict[str, Any]:
    """What the contract sends the model for a request: "" / NaN for what is not given."""
    row: dict[str, Any] = {}
    for name, role in ROLES.items():
        value = values.get(name)
        if role == "image":
            row[name] = list(photos)
        elif role == "numeric":
            row[name] = math.nan if value is None else value
        else:
            row[name] = value if isinstance(value, str) and value.strip() else ""
    return row


def as_json(values: dict[str, Any], photos: list[bytes]) -> dict[str, Any]:
    return {**values, **({"images": [b64(p) for p in photos]} if photos else {})}


def as_form(values: dict[str, Any], photos: list[bytes]) -> tuple[dict[str, str], list[tuple[str, Any]]]:
    fields = {k: str(v) for k, v in values.items() if v is not None}
    return fields, [("image", (f"photo{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]


def expected_range(price: float, key: str, level: float = 0.8) -> dict[str, float]:
    subset = BY_INPUTS.get(key)
    usable = subset is not None and level not in subset["too_few_rows_for"]
    q_low, q_high = (subset["quantiles"] if usable else RANGE_QUANTILES)[f"{level:g}"]
    rounded = round(price, 2)
    return {
        "low": min(round(price * math.exp(q_low), 2), rounded),
        "high": max(round(price * math.exp(q_high), 2), rounded),
        "level": level,
    }


def key_of(given: list[str]) -> str:
    return "+".join(g for g in ("metadata", "text", "image") if g in given)


def expected_if_given(price: float, given: list[str]) -> list[dict[str, Any]]:
    out = []
    for group, names in GROUPS.items():
        if group not in given:
            rng = expected_range(price, key_of([*given, group]))
            width = round((rng["high"] - rng["low"]) / price, 4)
            out.append(
                {"group": group, "inputs": names, "low": rng["low"], "high": rng["high"], "relative_width": width}
            )
        # the sort is stable, GROUPS order on ties
    return sorted(out, key=lambda entry: entry["relative_width"])


def neutral_copies(row: dict[str, Any], given: list[str]) -> list[dict[str, Any]]:
    """The item, then one neutral copy per group it gave (as the service scores them)."""
    base = {**NEUTRAL, "image": [grey_png()]}
    return [row] + [{**row, **{n: base[n] for n in GROUPS[g]}} for g in GROUPS if g in given]


# (case, request values, photos, the inputs missing, the groups given)
CASES = [
    ("complete", GOOD_ITEM, [PHOTO_A, PHOTO_B], [], ["metadata", "text", "image"]),
    ("no photo", GOOD_ITEM, [], ["image"], ["metadata", "text"]),
    (
        "no text",
        {k: v for k, v in GOOD_ITEM.items() if k not in TEXT},
        [PHOTO_A],
        list(TEXT),
        ["metadata", "image"],
    ),
    ("no metadata", {k: GOOD_ITEM[k] for k in TEXT}, [PHOTO_A], list(META), ["text", "image"]),
    ("only a photo", {}, [PHOTO_C], [*META, *TEXT], ["image"]),
    ("only the text", {"title": "Black midi dress"}, [], [*META, "description", "image"], ["text"]),
    ("only the metadata", {k: GOOD_ITEM[k] for k in META}, [], [*TEXT, "image"], ["metadata"]),
    (
        "nulls and blanks",
        {**GOOD_ITEM, "brand": None, "size": "", "age_months": None, "title": "  ", "description": None},
        [PHOTO_B],
        ["brand", "size", "age_months", "title", "description"],
        ["metadata", "image"],
    ),
    ("one number", {"age_months": 60.0}, [], [*META[:5], *TEXT, "image"], ["metadata"]),
]


@pytest.mark.parametrize(("values", "photos", "missing", "given"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_route_prices_each_kind_of_missing_input(multi_client, direct, values, photos, missing, given) -> None:
    row = model_row(values, photos)
    prices = direct(neutral_copies(row, given))
    price = round(prices[0], 2)
    contributions: dict[str, Any] = {}
    scored = iter(prices[1:])
    withouts = {g: next(scored) for g in GROUPS if g in given}
    total = sum(abs(prices[0] - w) for w in withouts.values())
    for group in GROUPS:
        if group in withouts:
            amount = prices[0] - withouts[group]
            contributions[group] = {"amount": round(amount, 2), "share": round(abs(amount) / total, 4)}
        else:
            contributions[group] = "missing"
    item = {
        "price": price,
        "warnings": [],
        "missing": missing,
        "range": expected_range(prices[0], key_of(given)),
        "range_if_given": expected_if_given(prices[0], given),
        "contributions": contributions,
    }
    meta = {"currency": "EUR", "model_version": "1"}

    answer = multi_client.post("/v1/predict", json=as_json(values, photos))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**item, **meta}
    fields, files = as_form(values, photos)
    uploaded = multi_client.post("/v1/predict/upload", data=fields, files=files or None)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {**item, **meta}
    batch = multi_client.post("/v1/predict/batch", json={"items": [as_json(values, photos)]})
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"predictions": [item], **meta}


def test_the_inputs_given_change_the_price_and_the_range_widens_with_less(multi_client) -> None:
    answers = {
        name: multi_client.post("/v1/predict", json=as_json(values, photos)).json()
        for name, values, photos, _, _ in CASES
    }
    assert len({a["price"] for a in answers.values()}) == len(CASES)  # each missing input matters
    width = {name: (a["range"]["high"] - a["range"]["low"]) / a["price"] for name, a in answers.items()}
    assert width["complete"] < width["no photo"] < width["only the metadata"] < width["only a photo"]
    # "only the text" has no subset of its own: the global range answers it, as wide as a complete one
    assert width["only the text"] == pytest.approx(width["complete"], abs=0.01)
    photo_only = answers["only a photo"]
    assert [(e["group"], e["inputs"]) for e in photo_only["range_if_given"]] == [
        ("metadata", list(META)),
        ("text", list(TEXT)),
    ]  # adding the metadata (1.2x) narrows more than adding the text (1.6x)


def test_the_range_of_a_subset_with_too_few_rows_is_the_global_one(multi_client, direct) -> None:
    item = as_json({}, [PHOTO_C])
    price = direct([model_row({}, [PHOTO_C])])[0]
    at_95 = multi_client.post("/v1/predict?level=0.95", json=item).json()
    assert at_95["range"] == expected_range(price, "", 0.95)  # "image" lists 0.95 in too_few_rows_for
    at_90 = multi_client.post("/v1/predict?level=0.9", json=item).json()
    q_low, q_high = BY_INPUTS["image"]["quantiles"]["0.9"]
    assert at_90["range"] == {
        "low": round(price * math.exp(q_low), 2),
        "high": round(price * math.exp(q_high), 2),
        "level": 0.9,
    }
    assert at_90["range"]["high"] - at_90["range"]["low"] > at_95["range"]["high"] - at_95["range"]["low"]


def test_several_photos_give_the_same_price_through_json_multipart_and_batch(multi_client, direct) -> None:
    photos = [PHOTO_A, PHOTO_B, PHOTO_C]
    two, three = direct([model_row(GOOD_ITEM, photos[:2]), model_row(GOOD_ITEM, photos)])
    one = direct([model_row(GOOD_ITEM, photos[:1])])[0]
    assert len({round(one, 2), round(two, 2), round(three, 2)}) == 3  # each photo counts
    for count, want in ((1, one), (2, two), (3, three)):
        body = as_json(GOOD_ITEM, photos[:count])
        json_price = multi_client.post("/v1/predict?explain=false", json=body).json()["price"]
        fields, files = as_form(GOOD_ITEM, photos[:count])
        form_price = multi_client.post("/v1/predict/upload?explain=false", data=fields, files=files).json()["price"]
        batch = multi_client.post("/v1/predict/batch?explain=false", json={"items": [body]}).json()
        assert json_price == form_price == batch["predictions"][0]["price"] == round(want, 2), count
    single = multi_client.post("/v1/predict?explain=false", json={**GOOD_ITEM, "image": b64(PHOTO_A)}).json()
    assert single["price"] == round(one, 2) and single["missing"] == []  # `image` is `images` of one


def test_a_batch_mixes_items_with_different_missing_inputs(multi_client) -> None:
    items = [as_json(values, photos) for _, values, photos, _, _ in CASES]
    batch = multi_client.post("/v1/predict/batch", json={"items": items})
    assert batch.status_code == 200, batch.text
    predictions = batch.json()["predictions"]
    assert [p["missing"] for p in predictions] == [c[3] for c in CASES]
    for item, prediction in zip(items, predictions, strict=True):
        alone = multi_client.post("/v1/predict", json=item).json()
        assert prediction == {k: v for k, v in alone.items() if k not in ("currency", "model_version")}
    assert [list(p["contributions"].values()).count("missing") for p in predictions] == [0, 1, 1, 1, 2, 2, 2, 1, 2]


def test_an_unknown_category_is_not_missing(multi_client) -> None:
    body = multi_client.post("/v1/predict", json={"brand": "acme", "title": "Dress"}).json()
    assert body["missing"] == ["category", "condition", "size", "colour", "age_months", "description", "image"]
    assert body["warnings"] == ["brand: 'acme' is not a value the model was trained on; it is treated as unknown"]
    blank = multi_client.post("/v1/predict", json={"brand": "", "title": "Dress"}).json()
    assert blank["warnings"] == [] and blank["missing"][0] == "brand"  # "" is missing, not unknown


def expect(response, status: int, loc: list[Any], msg: str, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(loc)) or "body"
    assert body == {"detail": f"{where}: {msg}", "errors": [{"loc": loc, "msg": msg, "type": kind}]}


TEXT_PHOTO = "image is text, not an image; send a JPEG, PNG, WebP or GIF photo"
TOO_MANY = "holds 4 photos; this model takes at most 3 per listing (max_photos)"
BOTH = "give either image (one photo) or images (a list of photos), not both"
JSON_REFUSALS = [
    ("nothing at all", {}, 422, [], NEEDED, "missing_inputs"),
    ("only nulls and blanks", {"brand": None, "title": " ", "age_months": None, "images": []}, 422, [], NEEDED,
     "missing_inputs"),
    ("too many photos", {"images": [b64(PHOTO_A)] * 4}, 422, ["images"], TOO_MANY, "too_long"),
    ("image and images", {"image": b64(PHOTO_A), "images": [b64(PHOTO_B)]}, 422, ["images"], BOTH,
     "image_and_images"),
    ("a bad photo among several", {"images": [b64(PHOTO_A), b64(b"just some text"), b64(PHOTO_B)]}, 422,
     ["images", 1], TEXT_PHOTO, "image"),
    ("an svg among several", {"title": "x", "images": [b64(b"<svg xmlns='http://www.w3.org/2000/svg'/>")]}, 415,
     ["images", 0], "SVG images are not accepted; send a JPEG, PNG, WebP or GIF photo", "image"),
    ("an empty photo", {"images": [b64(PHOTO_A), ""]}, 422, ["images", 1], "image is empty", "image"),
    ("images not a list", {"images": b64(PHOTO_A)}, 422, ["images"], "must be a JSON array", "list_type"),
    ("a number in images", {"images": [5]}, 422, ["images", 0], "must be a string", "string_type"),
    ("a boolean number", {"age_months": True}, 422, ["age_months"], "must be a number", "float_type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "loc", "msg", "kind"), [c[1:] for c in JSON_REFUSALS], ids=[c[0] for c in JSON_REFUSALS]
)
def test_predict_refuses_naming_the_field(multi_client, body, status, loc, msg, kind) -> None:
    expect(multi_client.post("/v1/predict", json=body), status, loc, msg, kind)
    batch = multi_client.post("/v1/predict/batch", json={"items": [as_json(GOOD_ITEM, [PHOTO_A]), body]})
    expect(batch, status, ["items", 1, *loc], msg, kind)


def test_an_unknown_field_names_images_among_the_inputs(multi_client) -> None:
    fields = "brand, category, condition, size, colour, age_months, title, description, image, images"
    expect(
        multi_client.post("/v1/predict", json={"title": "x", "photos": []}),
        422,
        ["photos"],
        f"unknown field; this model's inputs are: {fields}",
        "extra_forbidden",
    )


def test_upload_refuses_naming_the_part(multi_client) -> None:
    def upload(fields: dict[str, str], photos: list[bytes]):
        files = [("image", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
        # an empty form still has to be multipart: a dummy empty file part (a file field left empty)
        return multi_client.post("/v1/predict/upload", data=fields, files=files or [("image", ("", b"", "image/jpeg"))])

    expect(upload({}, []), 422, [], NEEDED, "missing_inputs")
    expect(upload({"brand": "", "age_months": " "}, []), 422, [], NEEDED, "missing_inputs")
    expect(upload({}, [PHOTO_A] * 4), 422, ["image"], TOO_MANY, "too_long")
    expect(upload({}, [PHOTO_A, b"just some text"]), 422, ["image", 1], TEXT_PHOTO, "image")
    expect(upload({"age_months": "old"}, [PHOTO_A]), 422, ["age_months"], "must be a number", "float_parsing")
    expect(upload({"image": "abc"}, []), 422, ["image"], "must be a file part of the form", "file")
    assert upload({"age_months": "", "title": "Dress"}, []).json()["missing"][-3:] == [
        "age_months",
        "description",
        "image",
    ]


def test_no_refusal_is_a_5xx(multi_client) -> None:
    bodies = [c[1] for c in JSON_REFUSALS] + [
        {"images": None, "image": None},
        {"images": [b64(PHOTO_A)] * 100},
        {"images": [[b64(PHOTO_A)]]},
        {"image": [b64(PHOTO_A)]},
        {"age_months": None, "images": [None]},
    ]
    for body in bodies:
        for route, payload in (("/v1/predict", body), ("/v1/predict/batch", {"items": [body]})):
            response = multi_client.post(route, json=payload)
            assert 400 <= response.status_code < 500, (route, body, response.text)


def test_the_card_describes_what_may_be_missing(multi_client) -> None:
    served = multi_client.get("/v1/model").json()["served"]
    assert served["optional_inputs"] is True
    assert served["input_groups"] == GROUPS
    assert served["max_photos"] == {"image": 3}
    assert served["range_subsets"] == sorted(BY_INPUTS)


def test_openapi_describes_the_optional_inputs_the_photos_and_the_new_answer_fields(multi_client) -> None:
    document = multi_client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    request = schemas["PredictRequest"]
    assert "required" not in request
    assert request["properties"]["images"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}, "maxItems": 3}
    assert "May be left out" in request["properties"]["age_months"]["description"]
    form = document["paths"]["/v1/predict/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["image"]["type"] == "array" and form["properties"]["image"]["maxItems"] == 3
    assert "required" not in form
    examples = document["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert examples["only_image"]["value"] == {"images": [examples["item"]["value"]["image"]]}
    assert examples["only_text"]["value"] == {"title": "A nice item", "description": "A nice item"}
    answer = schemas["PredictResponse"]["properties"]
    assert {"missing", "range_if_given"} <= set(answer) and "RangeIfGiven" in schemas
    assert {"const": "missing", "type": "string"} in schemas["Contributions"]["properties"]["image"]["anyOf"]
    example = document["paths"]["/v1/predict"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    assert example["missing"] == ["image"] and example["contributions"]["image"] == "missing"
    assert [e["group"] for e in example["range_if_given"]] == ["image"]
    assert "at least one must be" in document["info"]["description"]


def test_the_older_card_format_still_requires_every_input(client) -> None:
    """``client`` serves the tiny model with an older card (no `missing`, no `max_photos`, a
    `[batch]` photo argument): every field required, one photo, `images` unknown; its answers
    carry `missing: []`."""
    item = {**GOOD_ITEM, "image": b64(PHOTO_A)}
    answer = client.post("/v1/predict", json=item).json()
    assert answer["missing"] == [] and answer["range_if_given"] == []
    expect(client.post("/v1/predict", json=GOOD_ITEM), 422, ["image"], "field required", "missing")
    expect(client.post("/v1/predict", json={**item, "title": None}), 422, ["title"], "must be a string", "string_type")
    fields = "brand, category, condition, size, colour, age_months, title, description, image"
    refused = client.post("/v1/predict", json={**item, "images": [b64(PHOTO_A)]})
    expect(refused, 422, ["images"], f"unknown field; this model's inputs are: {fields}", "extra_forbidden")
    response = client.post("/v1/predict", json={})
    assert response.status_code == 422 and response.json()["detail"].startswith("brand: field required; ")
    parts = [("image", ("a.jpg", PHOTO_A, "image/jpeg")), ("image", ("b.jpg", PHOTO_B, "image/jpeg"))]
    two = client.post("/v1/predict/upload", data={k: str(v) for k, v in GOOD_ITEM.items()}, files=parts)
    expect(two, 422, ["image"], "given more than once", "repeat")
    assert client.get("/v1/model").json()["served"]["optional_inputs"] is False


def strip_new_fields(card: dict[str, Any]) -> None:
    card.pop("missing", None)
    card.get("interval", {}).pop("by_inputs", None)
    for entry in card["inputs"]:
        entry.pop("max_photos", None)


def test_a_card_that_does_not_match_the_photo_argument_is_refused(
    exported, exported_multi, tmp_path, start_client, caplog
) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    install_version(exported_multi, model_dir, 2, edit=edit_card(strip_new_fields))
    install_version(exported["v1"], model_dir, 3, edit=edit_card(lambda c: c["inputs"][8].update(max_photos=3)))
    install_version(exported_multi, model_dir, 4, edit=edit_card(lambda c: c["inputs"][8].update(max_photos=2)))
    with caplog.at_level(logging.INFO, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    assert client.get("/readyz").json()["model_version"] == "1"
    reasons = {
        int(line.split(" version=")[1].split()[0]): line.split(" reason=")[1]
        for line in (r.getMessage() for r in caplog.records)
        if "event=model_refused" in line
    }
    assert reasons == {
        2: "signature input 'image' is [batch, 3], the card says [batch]",
        3: "signature input 'image' is [batch], the card says [batch, 3] (max_photos 3)",
        4: "signature input 'image' is [batch, 3], the card says [batch, 2] (max_photos 2)",
    }


def test_a_card_whose_model_cannot_price_a_missing_input_is_refused(exported, tmp_path, start_client, caplog) -> None:
    """The warm-up prices incomplete items when the card says inputs may be missing: the older tiny
    model, whose graph cannot decode an empty photo, is refused under a card with a `missing` block."""
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    block = {"groups": GROUPS, "method": "test"}
    install_version(exported["v1"], model_dir, 2, edit=edit_card(lambda c: c.update(missing=block)))
    with caplog.at_level(logging.INFO, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    assert client.get("/readyz").json()["model_version"] == "1"
    [line] = [r.getMessage() for r in caplog.records if "event=model_refused version=2 " in r.getMessage()]
    assert "reason=warm-up failed: InvalidArgumentError:" in line


def one_slot_schema() -> ModelSchema:
    """The default inputs under a card with `missing` but no `max_photos` (one photo, `[batch]`)."""
    card = ServableCard.model_validate(
        {"name": "price", "version": 1, "created": "2026-12-01T00:00:00Z", "currency": "EUR",
         "inputs": DEFAULT_INPUTS, "missing": {"groups": GROUPS}}
    )  # fmt: skip
    limits = Limits(max_text_chars=5000, max_category_chars=200, max_image_bytes=10**7, max_batch_items=8)
    return ModelSchema(input_specs(card), "EUR", limits, groups=input_groups(card))


def test_a_card_with_missing_but_one_photo_takes_at_most_one(tmp_path) -> None:
    schema, settings = one_slot_schema(), make_settings(tmp_path)
    none = prepare_json(schema, json.dumps({"title": "Dress"}).encode(), settings)
    assert none.row["image"] == b"" and none.row["age_months"] != none.row["age_months"]  # "" and NaN
    assert none.missing == [*META, "description", "image"] and none.given == ("text",)
    one = prepare_json(schema, json.dumps({"images": [b64(PHOTO_A)]}).encode(), settings)
    assert one.row["image"] == PHOTO_A and one.given == ("image",) and one.row["brand"] == ""
    with pytest.raises(InputError) as refused:
        prepare_json(schema, json.dumps({"images": [b64(PHOTO_A)] * 2}).encode(), settings)
    assert refused.value.detail == "images: holds 2 photos; this model takes at most 1 per listing (max_photos)"
    form = prepare_form(schema, {"brand": ["zara"]}, {"image": [PHOTO_B]}, settings)
    assert form.row["image"] == PHOTO_B and form.given == ("metadata", "image")
    assert form.missing == ["category", "condition", "size", "colour", "age_months", *TEXT]
