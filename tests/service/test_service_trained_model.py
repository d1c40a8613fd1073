"""The service over the real tiny model that the training pipeline trains and exports
(``tiny_model_dir`` in tests/conftest.py): parity with its SavedModel on raw rows of its data set,
through the three prediction routes, and its card served as exported."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.support.service_testkit import image_bytes, make_settings, signature_feeds, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def card(tiny_model_dir: Path) -> dict[str, Any]:
    return json.loads((tiny_model_dir / "1" / "model_card.json").read_text())


@pytest.fixture(scope="module")
def rows(tiny_dataset: Path, card: dict[str, Any]) -> list[dict[str, Any]]:
    """The first rows of the tiny data set as raw model inputs (image as the file's bytes)."""
    roles = {i["name"]: i["role"] for i in card["inputs"]}
    with tiny_dataset.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))[:8]
    raw = []
    for record in table:
        row: dict[str, Any] = {}
        for name, role in roles.items():
            if role == "numeric":
                row[name] = float(record[name])
            elif role == "image":
                row[name] = (tiny_dataset.parent / record[name]).read_bytes()
            else:
                row[name] = record[name]
        raw.append(row)
    return raw


@pytest.fixture(scope="module")
def expected(tiny_model_dir: Path, rows: list[dict[str, Any]], card: dict[str, Any]) -> list[float]:
    """The SavedModel's own prices for the raw rows."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(tiny_model_dir / "1")).signatures[card["signature"]]
    return [round(float(p), 2) for p in signature(**signature_feeds(card, rows))[card["output"]].numpy()]


@pytest.fixture(scope="module")
def trained_client(tiny_model_dir: Path):
    with TestClient(create_app(make_settings(tiny_model_dir))) as client:
        wait_ready(client)
        yield client


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in row.items()}


def test_trained_model_parity_on_json_upload_and_batch(trained_client, rows, expected, card) -> None:
    assert len(set(expected)) > 1
    for row, price in zip(rows, expected, strict=True):
        response = trained_client.post("/v1/predict", json=as_json(row))
        assert response.status_code == 200, response.text
        body = response.json()
        assert {k: body[k] for k in ("price", "currency", "model_version", "warnings")} == {
            "price": price,
            "currency": card["currency"],
            "model_version": "1",
            "warnings": [],
        }
        assert set(body) == {
            "price", "currency", "model_version", "warnings", "missing", "range", "range_if_given", "contributions",
            "comparables",
        }  # fmt: skip
        assert body["missing"] == [] and body["range_if_given"] == []
        fields = {k: str(v) for k, v in row.items() if not isinstance(v, bytes)}
        files = {k: ("photo.jpg", v, "image/jpeg") for k, v in row.items() if isinstance(v, bytes)}
        upload = trained_client.post("/v1/predict/upload", data=fields, files=files)
        assert upload.status_code == 200, upload.text
        assert upload.json()["price"] == price
    batch = trained_client.post("/v1/predict/batch", json={"items": [as_json(r) for r in rows]})
    assert batch.status_code == 200, batch.text
    assert [p["price"] for p in batch.json()["predictions"]] == expected


def test_trained_model_card_and_schema_are_served(trained_client, card) -> None:
    served = trained_client.get("/v1/model").json()
    assert served["name"] == card["name"] and served["created"] == card["created"]
    assert [i["name"] for i in served["inputs"]] == [i["name"] for i in card["inputs"]]
    schema = trained_client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    assert card["missing"] and "required" not in schema  # the pipeline's card: every input optional
    assert list(schema["properties"]) == [*(i["name"] for i in card["inputs"]), "images"]
    example = trained_client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]["item"]["value"]
    response = trained_client.post("/v1/predict", json=example)
    assert response.status_code == 200 and response.json()["warnings"] == []


def test_trained_model_warns_on_an_unseen_brand(trained_client, rows) -> None:
    response = trained_client.post("/v1/predict", json={**as_json(rows[0]), "brand": "no such brand"})
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        "brand: 'no such brand' is not a value the model was trained on; it is treated as unknown"
    ]


@pytest.fixture(scope="module")
def signature(tiny_model_dir: Path, card: dict[str, Any]):
    import tensorflow as tf

    return tf.saved_model.load(str(tiny_model_dir / "1")).signatures[card["signature"]]


def direct(signature, card: dict[str, Any], rows: list[dict[str, Any]]) -> list[float]:
    return [round(float(p), 2) for p in signature(**signature_feeds(card, rows))[card["output"]].numpy()]


def left_out(row: dict[str, Any], card: dict[str, Any], groups: tuple[str, ...]) -> tuple[dict[str, Any], dict]:
    """``row`` without the inputs of ``groups``: the request (those fields absent) and the model's
    row (as the contract sends them: "" / NaN / no photo)."""
    names = {n for g in groups for n in card["missing"]["groups"].get(g, [])}
    roles = {i["name"]: i["role"] for i in card["inputs"]}
    request = {k: v for k, v in row.items() if k not in names}
    model = {
        k: ([] if roles[k] == "image" else None if roles[k] == "numeric" else "") if k in names else v
        for k, v in row.items()
    }
    return request, model


LEFT_OUT = [(), ("image",), ("text",), ("metadata",), ("metadata", "text"), ("text", "image"), ("metadata", "image")]


@pytest.mark.parametrize("groups", LEFT_OUT, ids=["+".join(g) or "complete" for g in LEFT_OUT])
def test_trained_model_prices_incomplete_listings_like_its_savedmodel(
    trained_client, signature, rows, card, groups
) -> None:
    requests, models = zip(*(left_out(row, card, groups) for row in rows[:4]), strict=True)
    want = direct(signature, card, list(models))
    missing = [i["name"] for i in card["inputs"] if i["name"] not in requests[0]]
    for request, price in zip(requests, want, strict=True):
        body = trained_client.post("/v1/predict", json=as_json(request)).json()
        assert body["price"] == price and body["missing"] == missing
        assert [g for g, part in body["contributions"].items() if part == "missing"] == list(
            g for g in ("metadata", "text", "image") if g in groups
        )
        assert sorted(e["group"] for e in body["range_if_given"]) == sorted(groups)
        fields = {k: str(v) for k, v in request.items() if not isinstance(v, bytes)}
        files = [(k, ("photo.jpg", v, "image/jpeg")) for k, v in request.items() if isinstance(v, bytes)]
        upload = trained_client.post("/v1/predict/upload", data=fields, files=files or None)
        assert upload.status_code == 200, upload.text
        assert upload.json()["price"] == price and upload.json()["missing"] == missing
    batch = trained_client.post("/v1/predict/batch", json={"items": [as_json(r) for r in requests]}).json()
    assert [p["price"] for p in batch["predictions"]] == want


def test_trained_model_prices_several_photos_alike_through_json_and_multipart(
    trained_client, signature, rows, card
) -> None:
    photos = [rows[0]["image"], rows[1]["image"], image_bytes("PNG", seed=3)]
    want = direct(signature, card, [{**rows[0], "image": photos[:n]} for n in (1, 2, 3)])
    assert len(set(want)) > 1  # the photos the model pools move its price
    meta = {k: v for k, v in rows[0].items() if k != "image"}
    for n, price in zip((1, 2, 3), want, strict=True):
        body = {**meta, "images": [base64.b64encode(p).decode() for p in photos[:n]]}
        assert trained_client.post("/v1/predict", json=body).json()["price"] == price
        files = [("image", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos[:n])]
        fields = {k: str(v) for k, v in meta.items()}
        assert trained_client.post("/v1/predict/upload", data=fields, files=files).json()["price"] == price


@pytest.fixture(scope="module")
def one_photo_dir(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained with ``model.max_photos = 1`` (the older `[batch]` photo argument),
    its card stripped of `missing`, `interval.by_inputs` and `max_photos`: a card from before."""
    from harness.models import tiny_sets
    from tests.support.tiny import SYNTHETIC_CONFIG, train_in
    from training.config import load

    work = tmp_path_factory.mktemp("one_photo")
    sets = [
        *tiny_sets(tiny_dataset, work / "models", "tiny", ablations="none", epochs=1),
        "model.max_photos=1",
        "comparables.enabled=false",
    ]
    folder = Path(train_in(work, load(SYNTHETIC_CONFIG, sets))["path"])
    card = json.loads((folder / "model_card.json").read_text())
    card.pop("missing", None)
    card.get("interval", {}).pop("by_inputs", None)
    for entry in card["inputs"]:
        entry.pop("max_photos", None)
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder.parent


def test_an_older_card_over_the_one_photo_signature_requires_every_input(one_photo_dir, rows) -> None:
    import tensorflow as tf

    card = json.loads((one_photo_dir / "1" / "model_card.json").read_text())
    signature = tf.saved_model.load(str(one_photo_dir / "1")).signatures[card["signature"]]
    assert signature.structured_input_signature[1]["image"].shape.as_list() == [None]
    want = direct(signature, card, rows[:3])
    with TestClient(create_app(make_settings(one_photo_dir))) as client:
        wait_ready(client)
        for row, price in zip(rows[:3], want, strict=True):
            body = client.post("/v1/predict", json=as_json(row)).json()
            assert body["price"] == price and body["missing"] == [] and body["range_if_given"] == []
        no_photo = client.post("/v1/predict", json=as_json({k: v for k, v in rows[0].items() if k != "image"}))
        assert no_photo.status_code == 422 and no_photo.json()["detail"] == "image: field required"
        no_brand = client.post("/v1/predict", json=as_json({**rows[0], "brand": None}))
        assert no_brand.status_code == 422 and no_brand.json()["detail"] == "brand: must be a string"
        several = client.post("/v1/predict", json={**as_json(rows[0]), "images": [as_json(rows[0])["image"]]})
        assert several.status_code == 422 and several.json()["detail"].startswith("images: unknown field")
        assert client.get("/v1/model").json()["served"]["optional_inputs"] is False


def test_a_title_alone_gets_the_range_calibrated_for_a_title_alone(tiny_model_dir, tmp_path, rows, card) -> None:
    """The card's `interval.first_text` (the title): a listing whose only text is its title gets
    the `|first_text_only` quantiles of its subset, one with its description too the subset's,
    and its `range_if_given` keeps the title-only key. (The tiny valid split has too few rows for
    quantiles of its own: the card is given some.)"""
    import math
    import shutil

    assert card["interval"]["first_text"] == "title" and "text|first_text_only" in card["interval"]["by_inputs"]
    folder = tmp_path / "models"
    shutil.copytree(tiny_model_dir / "1", folder / "1")
    edited = json.loads((folder / "1" / "model_card.json").read_text())
    level = str(edited["interval"]["level"])
    subsets = ["text", "metadata+text", "text+image", "metadata+text+image"]
    by_inputs = {}
    for i, key in enumerate(subsets):
        by_inputs[key] = {"n": 100, "quantiles": {level: [-0.1 - 0.01 * i, 0.1 + 0.01 * i]}, "too_few_rows_for": []}
        by_inputs[key + "|first_text_only"] = {
            "n": 100, "quantiles": {level: [-0.5 - 0.01 * i, 0.5 + 0.01 * i]}, "too_few_rows_for": []
        }  # fmt: skip
    edited["interval"]["by_inputs"] = by_inputs
    (folder / "1" / "model_card.json").write_text(json.dumps(edited))
    with TestClient(create_app(make_settings(folder))) as client:
        wait_ready(client)
        for groups in (("text",), ("metadata", "text"), ("text", "image")):
            key = "+".join(groups)
            dropped = tuple(g for g in ("metadata", "text", "image") if g not in groups)
            request, _ = left_out(rows[0], card, dropped)
            title_only = {k: v for k, v in request.items() if k != "description"}
            for body, suffix in ((request, ""), (title_only, "|first_text_only")):
                answer = client.post("/v1/predict", json=as_json(body)).json()
                price, got = answer["price"], answer["range"]
                q_low, q_high = by_inputs[key + suffix]["quantiles"][level]
                assert math.isclose(got["low"], round(price * math.exp(q_low), 2), abs_tol=0.011), (key, answer)
                assert math.isclose(got["high"], round(price * math.exp(q_high), 2), abs_tol=0.011), (key, answer)
                if "image" not in groups:  # a photo added keeps the title-only key
                    [photo] = [e for e in answer["range_if_given"] if e["group"] == "image"]
                    q_photo = by_inputs[key + "+image" + suffix]["quantiles"][level][1]
                    assert math.isclose(photo["high"], round(price * math.exp(q_photo), 2), abs_tol=0.011)
