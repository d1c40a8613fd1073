"""The comparables over the real tiny model (trained and exported by the pipeline, with its index):
what the answers carry, the thumbnails route, the query's bounds, the parity of the served
embedding with the stored one, and versions whose index is broken (refused whole) or absent
(served without comparables)."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from common.neighbours import Neighbours
from service.main import create_app
from tests.support.service_testkit import install_version, make_settings, wait_ready

pytestmark = pytest.mark.slow
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def version_dir(tiny_model_dir: Path) -> Path:
    return tiny_model_dir / "1"


@pytest.fixture(scope="module")
def card(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / "model_card.json").read_text())


@pytest.fixture(scope="module")
def table(tiny_dataset: Path) -> dict[str, dict[str, str]]:
    with tiny_dataset.open(newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def as_item(row: dict[str, str], card: dict[str, Any], root: Path) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for spec in card["inputs"]:
        value = row[spec["name"]]
        if spec["role"] == "numeric":
            item[spec["name"]] = float(value)
        elif spec["role"] == "image":
            item[spec["name"]] = base64.b64encode((root / value).read_bytes()).decode()
        else:
            item[spec["name"]] = value
    return item


@pytest.fixture(scope="module")
def items(table, card, tiny_dataset: Path) -> list[dict[str, Any]]:
    return [as_item(row, card, tiny_dataset.parent) for row in list(table.values())[:6]]


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path):
    with TestClient(create_app(make_settings(tiny_model_dir))) as test_client:
        wait_ready(test_client)
        yield test_client


def test_index_is_in_the_card_and_the_version_folder(card, version_dir: Path) -> None:
    block = card["comparables"]
    assert block["fields"] == ["title", "brand", "category", "condition", "size"]
    assert block["search"] == "exact" and block["metric"] == "l2"
    splits = card["dataset"]["splits"]
    assert block["count"] == splits["train"] + splits["valid"]
    assert block["dimensions"][-1] == "deep" and len(block["dimensions"]) == block["dim"]
    assert block["thumbnails"]["count"] == block["count"] and block["thumbnails"]["size"] == 64
    assert set(block["files"]) == {
        "vectors.npy",
        "prices.npy",
        "listings.json",
        "thumbnails.bin",
        "thumbnail_offsets.npy",
    }
    assert sorted(p.name for p in (version_dir / "comparables").iterdir()) == sorted(block["files"])


def test_answers_carry_comparables_with_only_the_chosen_fields(client, items, card, table) -> None:
    response = client.post("/v1/predict", json=items[0])
    assert response.status_code == 200, response.text
    found = response.json()["comparables"]
    assert len(found) == card["comparables"]["default_k"] == 5
    chosen = card["comparables"]["fields"]
    shown_anywhere = set()
    for c in found:
        assert set(c) == {"id", "price", "similarity", "fields", "thumbnail"}
        assert list(c["fields"]) == chosen
        shown_anywhere |= set(c["fields"])
        listing = table[c["id"]]  # a real listing of the table, with its real price and fields
        assert c["price"] == round(float(listing["price"]), 2)
        assert c["fields"] == {f: listing[f] for f in chosen}
        assert c["thumbnail"] == f"v1/comparables/{c['id']}/thumbnail?version=1"
        assert 0.0 < c["similarity"] <= 1.0
    assert [c["similarity"] for c in found] == sorted((c["similarity"] for c in found), reverse=True)
    # a column that the config did not choose is never in an answer, not even its values
    assert shown_anywhere == set(chosen)
    text = response.text
    for c in found:
        description = table[c["id"]]["description"]
        assert description not in text


def test_the_query_sets_how_many_and_is_bounded(client, items) -> None:
    two = client.post("/v1/predict?comparables=2", json=items[0]).json()["comparables"]
    five = client.post("/v1/predict", json=items[0]).json()["comparables"]
    assert same(two, five[:2])
    twenty = client.post("/v1/predict?comparables=20", json=items[0]).json()["comparables"]
    assert len(twenty) == 20 and same(twenty[:5], five)
    none = client.post("/v1/predict?comparables=0", json=items[0])
    assert none.status_code == 200 and "comparables" not in none.json()
    for bad, msg in (
        ("21", "comparables: Input should be less than or equal to 20"),
        ("-1", "comparables: Input should be greater than or equal to 0"),
        ("many", "comparables: Input should be a valid integer, unable to parse string as an integer"),
    ):
        response = client.post(f"/v1/predict?comparables={bad}", json=items[0])
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == msg


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """The same comparables; similarities to 1e-3 (a batch of other size rounds the floats apart)."""
    strip = [[{k: v for k, v in c.items() if k != "similarity"} for c in x] for x in (a, b)]
    return strip[0] == strip[1] and all(
        abs(x["similarity"] - y["similarity"]) < 1e-3 for x, y in zip(a, b, strict=True)
    )


def test_upload_and_batch_carry_the_same_comparables(client, items, card) -> None:
    alone = [client.post("/v1/predict?comparables=3", json=item).json()["comparables"] for item in items[:3]]
    assert len({json.dumps(a) for a in alone}) > 1  # different listings, different evidence
    batch = client.post("/v1/predict/batch?comparables=3", json={"items": items[:3]})
    assert batch.status_code == 200, batch.text
    assert all(same(p["comparables"], a) for p, a in zip(batch.json()["predictions"], alone, strict=True))
    image = next(i["name"] for i in card["inputs"] if i["role"] == "image")
    fields = {k: str(v) for k, v in items[0].items() if k != image}
    files = {image: ("photo.jpg", base64.b64decode(items[0][image]), "image/jpeg")}
    upload = client.post("/v1/predict/upload?comparables=3", data=fields, files=files)
    assert upload.status_code == 200, upload.text
    assert same(upload.json()["comparables"], alone[0])


def test_a_training_listing_finds_itself_first(client, table, card, tiny_dataset: Path, version_dir: Path) -> None:
    """Parity: the embedding the service computes from the raw listing is the one stored at export."""
    listings = json.loads((version_dir / "comparables" / "listings.json").read_text())
    stored = np.load(version_dir / "comparables" / "vectors.npy")
    for row in listings["ids"][:4]:
        item = as_item(table[row], card, tiny_dataset.parent)
        first = client.post("/v1/predict?comparables=1&explain=false", json=item).json()["comparables"][0]
        assert first["id"] == row
        assert first["similarity"] > 0.99  # exp(-distance): float16 storage rounds a little
    assert stored.dtype == np.float16 and stored.shape == (card["comparables"]["count"], card["comparables"]["dim"])


def test_thumbnails_are_served_and_unknown_ones_are_404(client, items) -> None:
    found = client.post("/v1/predict", json=items[0]).json()["comparables"]
    response = client.get("/" + found[0]["thumbnail"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as img:
        assert img.format == "JPEG" and max(img.size) <= 64
    missing = client.get("/v1/comparables/no-such-listing/thumbnail")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "listing_id: no listing 'no-such-listing' with a thumbnail in version 1"
    other = client.get(f"/v1/comparables/{found[0]['id']}/thumbnail?version=7")
    assert other.status_code == 404
    assert other.json()["detail"] == "version: 7 is not served any more (the service serves 1)"
    assert client.get("/v1/model").json()["served"]["comparables"] > 0


def test_thumbnails_need_the_api_key(tiny_model_dir: Path, items) -> None:
    with TestClient(create_app(make_settings(tiny_model_dir, api_key=KEY))) as keyed:
        wait_ready(keyed)
        headers = {"Authorization": f"Bearer {KEY}"}
        found = keyed.post("/v1/predict", json=items[0], headers=headers).json()["comparables"]
        assert keyed.get("/" + found[0]["thumbnail"]).status_code == 401
        assert keyed.get("/" + found[0]["thumbnail"], headers=headers).status_code == 200


def _refusals(caplog, version: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "service.registry" and f"event=model_refused version={version} " in r.getMessage()
    ]


def _flip_byte(name: str):
    def edit(folder: Path) -> None:
        path = folder / "comparables" / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    return edit


def _drop_file(name: str):
    def edit(folder: Path) -> None:
        (folder / "comparables" / name).unlink()

    return edit


def _card_edit(change):
    def edit(folder: Path) -> None:
        path = folder / "model_card.json"
        card = json.loads(path.read_text())
        change(card)
        path.write_text(json.dumps(card))

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_flip_byte("vectors.npy"), "comparables index: comparables/vectors.npy does not match its sha256"),
        (_flip_byte("thumbnails.bin"), "comparables index: comparables/thumbnails.bin does not match its sha256"),
        (_drop_file("listings.json"), "comparables index: comparables/listings.json is missing"),
        (
            _card_edit(lambda c: c["comparables"].update(count=3)),
            "comparables index: comparables: ",
        ),
        (
            _card_edit(lambda c: c["comparables"]["files"].pop("prices.npy")),
            "model card: comparables: files must name prices.npy",
        ),
    ],
    ids=["vectors-corrupt", "thumbnails-corrupt", "listings-missing", "count-wrong", "file-unnamed"],
)
def test_a_broken_index_refuses_the_whole_version(
    tiny_model_dir: Path, tmp_path: Path, start_client, caplog, items, edit, reason
) -> None:
    model_dir = tmp_path / "price"
    install_version(tiny_model_dir / "1", model_dir, 1)
    install_version(tiny_model_dir / "1", model_dir, 2, edit=edit)
    with caplog.at_level(logging.INFO, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    [refusal] = _refusals(caplog, 2)
    assert reason in refusal
    response = client.post("/v1/predict", json=items[0])
    assert response.status_code == 200 and response.json()["model_version"] == "1"
    assert len(response.json()["comparables"]) == 5


def test_a_version_without_an_index_serves_without_comparables(
    tiny_model_dir: Path, tmp_path: Path, start_client, items
) -> None:
    def without(folder: Path) -> None:
        shutil.rmtree(folder / "comparables")
        _card_edit(lambda c: c.pop("comparables"))(folder)

    model_dir = tmp_path / "price"
    install_version(tiny_model_dir / "1", model_dir, 1, edit=without)
    client = start_client(make_settings(model_dir))
    for query in ("", "?comparables=3"):
        response = client.post(f"/v1/predict{query}", json=items[0])
        assert response.status_code == 200, response.text
        assert "comparables" not in response.json() and response.json()["price"] > 0
    assert client.get("/v1/model").json()["served"]["comparables"] == 0
    assert client.get("/v1/comparables/1/thumbnail").status_code == 404


def test_an_hnsw_index_is_served_like_an_exact_one(tiny_model_dir: Path, tmp_path: Path, start_client, items) -> None:
    """The approximate path, on the tiny index rebuilt as an HNSW graph (what exports above
    comparables.exact_max listings get): same answers on this small index."""
    import hashlib

    def to_hnsw(folder: Path) -> None:
        index = folder / "comparables"
        vectors = np.load(index / "vectors.npy").astype(np.float32)
        names = Neighbours.build(vectors, "hnsw", metric="l2").save(index)
        block = json.loads((folder / "model_card.json").read_text())["comparables"]
        files = {**block["files"], **{n: hashlib.sha256((index / n).read_bytes()).hexdigest() for n in names}}
        _card_edit(lambda c: c["comparables"].update(search="hnsw", files=files))(folder)

    model_dir = tmp_path / "price"
    install_version(tiny_model_dir / "1", model_dir, 1)
    exact = start_client(make_settings(model_dir))
    expected = [exact.post("/v1/predict", json=item).json()["comparables"] for item in items[:3]]
    other = tmp_path / "hnsw"
    install_version(tiny_model_dir / "1", other, 1, edit=to_hnsw)
    approximate = start_client(make_settings(other))
    assert approximate.get("/v1/model").json()["comparables"]["search"] == "hnsw"
    got = [approximate.post("/v1/predict", json=item).json()["comparables"] for item in items[:3]]
    assert [[c["id"] for c in g] for g in got] == [[c["id"] for c in e] for e in expected]
