"""The price range and the contributions in the answers: over a hand-built contract model whose
card carries `interval` and `explain` blocks, over the same model with an older card (no blocks)
and with a broken block, and over the tiny model trained by the pipeline."""

from __future__ import annotations

import base64
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.support.service_testkit import (
    EXPLAIN_BLOCK,
    GOOD_ITEM,
    INTERVAL_BLOCK,
    NEUTRAL,
    RANGE_QUANTILES,
    grey_png,
    image_bytes,
    install_version,
    make_settings,
    signature_feeds,
    wait_ready,
    with_blocks,
)


@pytest.fixture(scope="module")
def explained_client(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    model_dir = tmp_path_factory.mktemp("explained") / "price"
    install_version(exported["v1"], model_dir, 1, edit=with_blocks(INTERVAL_BLOCK, EXPLAIN_BLOCK))
    with TestClient(create_app(make_settings(model_dir))) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def direct(exported: dict[str, Path]):
    """``direct(rows)`` -> the SavedModel's own prices for raw rows (image bytes)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(exported["v1"])).signatures["serving_default"]

    def call(rows: list[dict[str, Any]]) -> list[float]:
        feeds = {
            name: tf.constant([r[name] for r in rows], dtype=tf.float32 if name == "age_months" else tf.string)
            for name in rows[0]
        }
        return [float(p) for p in signature(**feeds)["price"].numpy()]

    return call


def raw_item(seed: int = 1, **changes: Any) -> dict[str, Any]:
    return {**GOOD_ITEM, "image": image_bytes("JPEG", seed=seed), **changes}


def as_json(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "image": base64.b64encode(raw["image"]).decode()}


def neutral_copies(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The item and its three neutral copies, as the service scores them."""
    meta = ("brand", "category", "condition", "size", "colour", "age_months")
    base = {**NEUTRAL, "image": grey_png()}
    return [
        raw,
        {**raw, **{k: base[k] for k in meta}},
        {**raw, "title": "", "description": ""},
        {**raw, "image": base["image"]},
    ]


def check_answer(answer: dict[str, Any], level: float = 0.8) -> None:
    price, rng = answer["price"], answer["range"]
    assert rng["level"] == level
    assert rng["low"] <= price <= rng["high"] and rng["low"] < rng["high"]
    q_low, q_high = RANGE_QUANTILES[f"{level:g}"]
    assert rng["low"] == pytest.approx(price * math.exp(q_low), abs=0.011)
    assert rng["high"] == pytest.approx(price * math.exp(q_high), abs=0.011)


def test_predict_returns_the_range_and_the_contributions_of_each_modality(explained_client, direct) -> None:
    raw = raw_item(brand="nike", condition="new", age_months=3.0, title="Red dress", description="x" * 300)
    response = explained_client.post("/v1/predict", json=as_json(raw))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == [
        "price", "currency", "model_version", "warnings", "missing", "range", "range_if_given", "contributions"
    ]  # fmt: skip
    assert body["missing"] == [] and body["range_if_given"] == []  # an older card: every input was given
    check_answer(body)
    prices = direct(neutral_copies(raw))
    assert body["price"] == round(prices[0], 2)
    contributions = body["contributions"]
    assert list(contributions) == ["metadata", "text", "image"]
    total = sum(abs(prices[0] - p) for p in prices[1:])
    for (name, part), without in zip(contributions.items(), prices[1:], strict=True):
        assert part["amount"] == pytest.approx(prices[0] - without, abs=0.006), name
        assert part["share"] == pytest.approx(abs(prices[0] - without) / total, abs=1e-4), name
    assert sum(p["share"] for p in contributions.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(p["amount"] != 0 for p in contributions.values())  # every modality moves this model's price


def test_explain_false_skips_the_contributions_and_keeps_the_range(explained_client) -> None:
    item = as_json(raw_item())
    full = explained_client.post("/v1/predict", json=item).json()
    response = explained_client.post("/v1/predict?explain=false", json=item)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "contributions" not in body
    assert body == {k: v for k, v in full.items() if k != "contributions"}


def test_level_picks_a_stored_level_and_refuses_others(explained_client) -> None:
    item = as_json(raw_item())
    default = explained_client.post("/v1/predict", json=item).json()["range"]
    wide = explained_client.post("/v1/predict?level=0.95", json=item).json()
    check_answer(wide, 0.95)
    assert wide["range"]["low"] < default["low"] and wide["range"]["high"] > default["high"]
    check_answer(explained_client.post("/v1/predict?level=0.50", json=item).json(), 0.5)
    refused = explained_client.post("/v1/predict?level=0.7", json=item)
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "level: must be one of 0.5, 0.8, 0.9, 0.95 (the levels this model version was calibrated at)"
    )
    not_a_number = explained_client.post("/v1/predict?level=high", json=item)
    assert not_a_number.status_code == 422 and not_a_number.json()["detail"].startswith("level: ")
    not_a_bool = explained_client.post("/v1/predict?explain=perhaps", json=item)
    assert not_a_bool.status_code == 422 and not_a_bool.json()["detail"].startswith("explain: ")


def test_upload_answers_like_predict(explained_client) -> None:
    raw = raw_item(seed=4)
    expected = explained_client.post("/v1/predict?level=0.9", json=as_json(raw)).json()
    fields = {k: str(v) for k, v in raw.items() if k != "image"}
    response = explained_client.post(
        "/v1/predict/upload?level=0.9", data=fields, files={"image": ("photo.jpg", raw["image"], "image/jpeg")}
    )
    assert response.status_code == 200, response.text
    assert response.json() == expected
    check_answer(response.json(), 0.9)
    lean = explained_client.post(
        "/v1/predict/upload?explain=false", data=fields, files={"image": ("photo.jpg", raw["image"], "image/jpeg")}
    ).json()
    assert "contributions" not in lean and lean["range"]["level"] == 0.8


def test_batch_answers_every_item_with_its_range_and_contributions(explained_client) -> None:
    raws = [raw_item(seed=s, age_months=float(10 * s)) for s in range(5)]
    singles = [explained_client.post("/v1/predict", json=as_json(r)).json() for r in raws]
    response = explained_client.post("/v1/predict/batch", json={"items": [as_json(r) for r in raws]})
    assert response.status_code == 200, response.text
    body = response.json()
    keys = {"price", "warnings", "missing", "range", "range_if_given", "contributions"}
    assert [set(p) for p in body["predictions"]] == [keys] * 5
    for answer, single in zip(body["predictions"], singles, strict=True):
        check_answer(answer)
        assert answer["price"] == single["price"] and answer["range"] == single["range"]
        for name, part in answer["contributions"].items():
            assert part["amount"] == pytest.approx(single["contributions"][name]["amount"], abs=0.011)
    lean = explained_client.post("/v1/predict/batch?explain=false&level=0.95", json={"items": [as_json(raws[0])]})
    [only] = lean.json()["predictions"]
    assert set(only) == {"price", "warnings", "missing", "range", "range_if_given"} and only["range"]["level"] == 0.95


def test_model_card_and_openapi_show_range_and_contributions(explained_client) -> None:
    card = explained_client.get("/v1/model").json()
    assert card["interval"]["quantiles"] == RANGE_QUANTILES
    assert card["served"]["range_levels"] == [0.5, 0.8, 0.9, 0.95] and card["served"]["contributions"] is True
    document = explained_client.get("/openapi.json").json()
    operation = document["paths"]["/v1/predict"]["post"]
    assert {p["name"] for p in operation["parameters"]} == {"explain", "level", "comparables"}
    example = operation["responses"]["200"]["content"]["application/json"]["example"]
    assert set(example["contributions"]) == {"metadata", "text", "image"}
    assert example["range"]["low"] <= example["price"] <= example["range"]["high"]
    batch = document["paths"]["/v1/predict/batch"]["post"]["responses"]["200"]["content"]["application/json"]
    assert "range" in batch["example"]["predictions"][0]
    assert "PriceRangeOut" in document["components"]["schemas"] and "Contributions" in document["components"]["schemas"]


def test_an_older_card_without_the_blocks_still_serves_without_them(exported, tmp_path, start_client, caplog) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)  # the card as the contract first described it
    with caplog.at_level(logging.WARNING, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    assert any(
        "event=model_card_without version=1 fields=interval,explain" in r.getMessage() for r in caplog.records
    ), caplog.text
    response = client.post("/v1/predict", json=as_json(raw_item()))
    fields = ["price", "currency", "model_version", "warnings", "missing", "range_if_given"]
    assert response.status_code == 200 and list(response.json()) == fields
    assert response.json()["missing"] == [] and response.json()["range_if_given"] == []
    batch = client.post("/v1/predict/batch", json={"items": [as_json(raw_item())]}).json()
    assert set(batch["predictions"][0]) == {"price", "warnings", "missing", "range_if_given"}
    refused = client.post("/v1/predict?level=0.8", json=as_json(raw_item()))
    assert refused.status_code == 422
    assert refused.json()["detail"] == "level: this model version has no calibrated range (its model card predates it)"
    served = client.get("/v1/model").json()["served"]
    assert served["range_levels"] == [] and served["contributions"] is False


def test_a_broken_block_turns_only_that_feature_off(exported, tmp_path, start_client, caplog) -> None:
    model_dir = tmp_path / "price"
    broken = {"method": "occlusion", "baseline": {**NEUTRAL, "image": base64.b64encode(b"not an image").decode()}}
    install_version(exported["v1"], model_dir, 1, edit=with_blocks(INTERVAL_BLOCK, broken))
    with caplog.at_level(logging.WARNING, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    assert any("event=contributions_disabled version=1" in r.getMessage() for r in caplog.records), caplog.text
    body = client.post("/v1/predict", json=as_json(raw_item())).json()
    assert "contributions" not in body and body["range"]["level"] == 0.8

    other = tmp_path / "other"
    install_version(
        exported["v1"], other, 1, edit=with_blocks({"level": 0.8, "quantiles": {"0.8": [0.3, -0.3]}}, EXPLAIN_BLOCK)
    )
    with caplog.at_level(logging.WARNING, logger="service.registry"):
        client = start_client(make_settings(other))
    assert any("event=range_disabled version=1" in r.getMessage() for r in caplog.records), caplog.text
    body = client.post("/v1/predict", json=as_json(raw_item())).json()
    assert "range" not in body and set(body["contributions"]) == {"metadata", "text", "image"}


# ------------------------------------------------------------------------------ the trained model


@pytest.mark.slow
def test_trained_model_answers_with_its_calibrated_range_and_contributions(tiny_model_dir: Path, tiny_dataset) -> None:
    import csv

    import tensorflow as tf

    card = json.loads((tiny_model_dir / "1" / "model_card.json").read_text())
    assert set(card["interval"]["quantiles"]) == {"0.5", "0.8", "0.9", "0.95"} and card["interval"]["level"] == 0.8
    assert set(card["explain"]["baseline"]) == {i["name"] for i in card["inputs"]}
    with tiny_dataset.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))[:3]
    roles = {i["name"]: i["role"] for i in card["inputs"]}
    raws = []
    for record in records:
        raws.append(
            {
                name: float(record[name])
                if role == "numeric"
                else (tiny_dataset.parent / record[name]).read_bytes()
                if role == "image"
                else record[name]
                for name, role in roles.items()
            }
        )
    with TestClient(create_app(make_settings(tiny_model_dir))) as client:
        wait_ready(client)
        response = client.post("/v1/predict/batch", json={"items": [as_json(r) for r in raws]})
    assert response.status_code == 200, response.text
    signature = tf.saved_model.load(str(tiny_model_dir / "1")).signatures["serving_default"]
    neutral_image = base64.b64decode(card["explain"]["baseline"]["image"])
    for raw, answer in zip(raws, response.json()["predictions"], strict=True):
        rng = answer["range"]
        assert rng["level"] == 0.8 and rng["low"] <= answer["price"] <= rng["high"]
        assert set(answer["contributions"]) == {"metadata", "text", "image"}
        assert sum(p["share"] for p in answer["contributions"].values()) == pytest.approx(1.0, abs=1e-3)
        rows = [raw, {**raw, "image": neutral_image}]
        price, without_photo = (float(p) for p in signature(**signature_feeds(card, rows))["price"].numpy())
        assert answer["contributions"]["image"]["amount"] == pytest.approx(price - without_photo, abs=0.011)
