"""The prediction endpoints over a tiny SavedModel: parity with the SavedModel itself, the three
request styles, warnings, the model card, OpenAPI, and a model with other inputs and currency."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from service.images import prepare_image
from tests.support.service_testkit import GOOD_ITEM, image_bytes, install_version, make_settings


@pytest.fixture(scope="module")
def direct(exported: dict[str, Path]):
    """``direct(items)`` -> the SavedModel's own prices for raw items (image bytes as given)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(exported["v1"])).signatures["serving_default"]

    def call(items: list[dict[str, Any]]) -> list[float]:
        feeds = {
            name: tf.constant(
                [item[name] for item in items],
                dtype=tf.float32 if name == "age_months" else tf.string,
            )
            for name in items[0]
        }
        return [float(p) for p in signature(**feeds)["price"].numpy()]

    return call


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw_item(**changes: Any) -> dict[str, Any]:
    """An item with the image as bytes (for the SavedModel)."""
    return {**GOOD_ITEM, "image": image_bytes("JPEG", seed=1), **changes}


def json_item(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "image": b64(raw["image"])}


def form_of(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    fields = {k: str(v) for k, v in raw.items() if k != "image"}
    return fields, {"image": ("photo.jpg", raw["image"], "image/jpeg")}


VARIANTS = [
    {},
    {"brand": "nike", "condition": "new", "age_months": 0.0},
    {"category": "jeans", "size": "XL", "colour": "blue", "age_months": 120.0},
    {"title": "", "description": "x" * 400},
    {"image": image_bytes("PNG", seed=7)},
    {"image": image_bytes("JPEG", size=(300, 200), seed=9)},
]


def test_parity_predict_equals_the_savedmodel_on_the_same_raw_inputs(client, direct) -> None:
    raws = [raw_item(**v) for v in VARIANTS]
    expected = direct(raws)
    assert len({round(p, 2) for p in expected}) == len(raws)  # the inputs matter to the model
    for raw, want in zip(raws, expected, strict=True):
        response = client.post("/v1/predict", json=json_item(raw))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "price": round(want, 2),
            "currency": "EUR",
            "model_version": "1",
            "warnings": [],
            "missing": [],  # an older card: every input is required
            "range_if_given": [],
        }


def test_parity_upload_and_batch_equal_the_savedmodel(client, direct) -> None:
    raws = [raw_item(**v) for v in VARIANTS]
    expected = [round(p, 2) for p in direct(raws)]
    uploaded = []
    for raw in raws:
        fields, files = form_of(raw)
        response = client.post("/v1/predict/upload", data=fields, files=files)
        assert response.status_code == 200, response.text
        uploaded.append(response.json()["price"])
    assert uploaded == expected

    response = client.post("/v1/predict/batch", json={"items": [json_item(r) for r in raws]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "predictions": [{"price": p, "warnings": [], "missing": [], "range_if_given": []} for p in expected],
        "currency": "EUR",
        "model_version": "1",
    }


def test_parity_under_concurrency_with_micro_batching(client, direct) -> None:
    raws = [raw_item(age_months=float(i), image=image_bytes("PNG", seed=i)) for i in range(24)]
    expected = [round(p, 2) for p in direct(raws)]

    def one(raw: dict[str, Any]) -> float:
        response = client.post("/v1/predict", json=json_item(raw))
        assert response.status_code == 200, response.text
        return response.json()["price"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        prices = list(pool.map(one, raws))
    assert prices == expected


def test_converted_images_price_like_their_converted_bytes(client, direct) -> None:
    """An EXIF-rotated or RGBA photo is prepared first; the price equals the SavedModel's on the
    prepared bytes (and differs from the unrotated pixels' price)."""
    stored = Image.open(io.BytesIO(image_bytes("PNG", size=(32, 16), seed=5))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=95, exif=exif.tobytes())
    rotated = out.getvalue()
    rgba = image_bytes("PNG", mode="RGBA", seed=6)
    for data in (rotated, rgba):
        prepared = prepare_image(data, max_bytes=10**7, max_pixels=10**7).data
        assert prepared != data
        [want] = direct([raw_item(image=prepared)])
        response = client.post("/v1/predict", json=json_item(raw_item(image=data)))
        assert response.status_code == 200, response.text
        assert response.json()["price"] == round(want, 2)
    [as_stored] = direct([raw_item(image=rotated)])
    response = client.post("/v1/predict", json=json_item(raw_item(image=rotated)))
    assert response.json()["price"] != round(as_stored, 2)


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: "data:image/jpeg;base64," + base64.b64encode(b).decode(),
    ],
    ids=["urlsafe-unpadded", "data-uri"],
)
def test_image_base64_variants_give_the_same_price(client, encode) -> None:
    raw = raw_item(image=image_bytes("JPEG", seed=11))
    reference = client.post("/v1/predict", json=json_item(raw)).json()["price"]
    response = client.post("/v1/predict", json={**raw, "image": encode(raw["image"])})
    assert response.status_code == 200, response.text
    assert response.json()["price"] == reference


def test_unknown_category_is_predicted_with_a_warning_naming_the_field(client, direct) -> None:
    raw = raw_item(brand="acme", colour="mauve")
    response = client.post("/v1/predict", json=json_item(raw))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["price"] == round(direct([raw])[0], 2)
    assert body["warnings"] == [
        "brand: 'acme' is not a value the model was trained on; it is treated as unknown",
        "colour: 'mauve' is not a value the model was trained on; it is treated as unknown",
    ]


def test_batch_warnings_stay_with_their_item(client) -> None:
    items = [json_item(raw_item()), json_item(raw_item(size="XXS"))]
    response = client.post("/v1/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert predictions[0]["warnings"] == []
    assert predictions[1]["warnings"] == [
        "size: 'XXS' is not a value the model was trained on; it is treated as unknown"
    ]


def test_batch_of_max_items_is_answered_in_order(exported, tmp_path, start_client) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir, max_batch_items=40, batch_max_size=16))
    items = [json_item(raw_item(age_months=float(i))) for i in range(40)]
    response = client.post("/v1/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    prices = [p["price"] for p in response.json()["predictions"]]
    singles = [client.post("/v1/predict", json=item).json()["price"] for item in items[:3]]
    assert prices[:3] == singles
    assert len(prices) == 40 and len(set(prices)) > 30


def test_model_card_endpoint(client) -> None:
    response = client.get("/v1/model")
    assert response.status_code == 200
    card = response.json()
    assert card["version"] == 1 and card["currency"] == "EUR"
    assert card["created"] == "2026-11-28T23:59:00Z"
    assert card["metrics"]["test"]["rmsle"] == 0.21
    assert [i["name"] for i in card["inputs"]] == [
        "brand",
        "category",
        "condition",
        "size",
        "colour",
        "age_months",
        "title",
        "description",
        "image",
    ]
    age = next(i for i in card["inputs"] if i["name"] == "age_months")
    assert age["accepted_range"] == [0.0, 240.0]
    assert card["served"]["version"] == "1"


def test_openapi_has_the_model_schema_and_examples(client) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    request = schemas["PredictRequest"]
    assert set(request["required"]) == {i for i in GOOD_ITEM} | {"image"}
    assert request["additionalProperties"] is False
    assert request["properties"]["age_months"]["maximum"] == 240.0
    body = document["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    example = body["examples"]["item"]["value"]
    assert example["brand"] == "zara" and example["image"]
    # The example itself is a valid request.
    assert client.post("/v1/predict", json=example).status_code == 200
    upload = document["paths"]["/v1/predict/upload"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    assert "/v1/predict/batch" in document["paths"]
    assert "422" in document["paths"]["/v1/predict"]["post"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_page_is_built_from_the_model_card(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<select id="field-brand" name="brand">' in html
    assert '<option value="h&amp;m">h&amp;m</option>' in html
    assert 'name="age_months" type="number"' in html
    assert '<textarea id="field-description" name="description"' in html
    assert 'type="file" accept="image/jpeg,image/png,image/webp,image/gif"' in html
    assert "in EUR" in html
    assert "nonce-" in response.headers["content-security-policy"]


def test_another_model_is_served_with_its_own_fields_and_currency(exported, tmp_path, start_client) -> None:
    model_dir = tmp_path / "myntra"
    install_version(exported["myntra"], model_dir, 1)
    client = start_client(make_settings(model_dir))
    item = {
        "gender": "Women",
        "master_category": "Footwear",
        "year": 2016,
        "title": "Red running shoes",
        "image": b64(image_bytes("JPEG")),
    }
    response = client.post("/v1/predict", json=item)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["currency"] == "INR" and body["price"] > 0 and body["warnings"] == []

    fields = {k: str(v) for k, v in item.items() if k != "image"}
    upload = client.post(
        "/v1/predict/upload", data=fields, files={"image": ("a.jpg", image_bytes("JPEG"), "image/jpeg")}
    )
    assert upload.status_code == 200 and upload.json()["price"] == body["price"]

    wrong = client.post("/v1/predict", json=json_item(raw_item()))
    assert wrong.status_code == 422
    assert "gender: field required" in wrong.json()["detail"]
    assert (
        "brand: unknown field; this model's inputs are: gender, master_category, year, title, image"
        in wrong.json()["detail"]
    )
    page = client.get("/").text
    assert 'name="master_category"' in page and "in INR" in page
