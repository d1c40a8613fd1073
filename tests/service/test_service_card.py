"""The service reads model cards with common.card: a newer card's unknown keys are served and
shown, a card the service cannot feed is refused with the field named, and a card written by the
exporter before common/card.py existed (tests/unit/model_card_before_common.json) is served."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from service.model import read_card
from tests.support.service_testkit import GOOD_ITEM, edit_card, image_bytes, install_version, make_settings, with_blocks

BEFORE_COMMON = Path(__file__).resolve().parents[1] / "unit" / "model_card_before_common.json"


def refusal(caplog, version: int) -> str:
    [line] = [r.getMessage() for r in caplog.records if f"event=model_refused version={version} " in r.getMessage()]
    return line


def test_a_card_from_a_newer_exporter_is_served_and_its_new_keys_shown(exported, tmp_path, start_client) -> None:
    def newer(card: dict) -> None:
        card["provenance"] = {"source": "feature-store", "k": 5}
        card["inputs"][0]["missing"] = "allowed"

    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1, edit=edit_card(newer))
    client = start_client(make_settings(model_dir))
    card = client.get("/v1/model").json()
    assert card["provenance"] == {"source": "feature-store", "k": 5} and card["inputs"][0]["missing"] == "allowed"
    item = {**GOOD_ITEM, "image": base64.b64encode(image_bytes("PNG")).decode()}
    assert client.post("/v1/predict", json=item).status_code == 200


def test_a_card_the_service_cannot_feed_is_refused_naming_the_field(exported, tmp_path, start_client, caplog) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    install_version(exported["v1"], model_dir, 2, edit=edit_card(lambda c: c["inputs"][4].update(role="colour")))
    install_version(exported["v1"], model_dir, 3, edit=edit_card(lambda c: c.pop("currency")))
    with caplog.at_level(logging.INFO, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    assert client.get("/readyz").json()["model_version"] == "1"
    assert "reason=model card: inputs[4] 'colour': Input tag 'colour' found using 'role'" in refusal(caplog, 2)
    assert "reason=model card: currency: Field required" in refusal(caplog, 3)


def test_the_range_and_contributions_blocks_are_read_through_the_card(exported, tmp_path, start_client) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1, edit=with_blocks())
    model = start_client(make_settings(model_dir)).app.state.service.registry.current
    assert model.price_range.levels == [0.5, 0.8, 0.9, 0.95] and model.price_range.level == 0.8
    assert list(model.occlusion.groups) == ["metadata", "text", "image"]
    assert model.occlusion.baseline["image"].startswith(b"\x89PNG") and model.occlusion.baseline["age_months"] == 24.0


def test_a_card_written_before_common_card_reads_whole(tmp_path) -> None:
    (tmp_path / "model_card.json").write_text(BEFORE_COMMON.read_text())
    raw, card, dropped = read_card(tmp_path)
    assert dropped == {} and raw == json.loads(BEFORE_COMMON.read_text())
    assert card.currency == "EUR" and len(card.inputs) == 9 and card.interval and card.explain
