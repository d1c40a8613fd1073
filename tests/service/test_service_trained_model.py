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
from tests.support.service_testkit import make_settings, wait_ready

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
    feeds = {
        i["name"]: tf.constant([r[i["name"]] for r in rows], dtype=tf.float32 if i["role"] == "numeric" else tf.string)
        for i in card["inputs"]
    }
    return [round(float(p), 2) for p in signature(**feeds)[card["output"]].numpy()]


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
        assert set(body) == {"price", "currency", "model_version", "warnings", "range", "contributions", "comparables"}
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
    assert set(schema["required"]) == {i["name"] for i in card["inputs"]}
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
