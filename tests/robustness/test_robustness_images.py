"""The bad-image corpus (reliability/corpus.py) through JSON and multipart: every file gives a price
or a 4xx whose message says what is wrong, the same on both routes; EXIF rotation is honoured."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from reliability.corpus import PRICE, bad_images, encode, rotated_pair
from tests.support.robustness_kit import FORM, ITEM, b64

CORPUS = bad_images()


def send_both(client, data: bytes, filename: str = "photo.jpg", media_type: str = "image/jpeg"):
    as_json = client.post("/v1/predict", json={**ITEM, "image": b64(data)})
    as_form = client.post("/v1/predict/upload", data=FORM, files={"image": (filename, data, media_type)})
    return as_json, as_form


def test_the_corpus_covers_the_issue_list() -> None:
    names = " | ".join(entry.name for entry in CORPUS)
    for wanted in ("zero bytes", "truncated JPEG", "text named .jpg", "HTML", "SVG", "50000x50000", "1x100000",
                   "16-bit", "CMYK", "progressive", "greyscale", "palette PNG with transparency", "animated GIF",
                   "WebP", "EXIF-rotated"):  # fmt: skip
        assert wanted in names
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("entry", CORPUS, ids=[e.name for e in CORPUS])
def test_bad_image_gives_a_price_or_a_clear_4xx_on_both_routes(tiny_client, entry) -> None:
    as_json, as_form = send_both(tiny_client, entry.data, entry.filename, entry.media_type)
    if not entry.data:  # the tiny model prices listings without a photo: an empty one is either
        # no photo (a price, "missing": ["image"]) or refused as empty, never anything else
        for response in (as_json, as_form):
            body = response.json()
            if response.status_code == 200:
                assert body["missing"] == ["image"] and body["price"] > 0, body
            else:
                assert response.status_code == 422 and body["detail"] == "image: image is empty", body
        return
    for response in (as_json, as_form):
        assert response.status_code == entry.status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        if entry.status == PRICE:
            assert body["price"] > 0 and body["currency"] == "EUR" and body["model_version"] == "1"
        else:
            assert entry.message in body["detail"], body
            assert body["errors"] and all(e["msg"] for e in body["errors"])
            assert len(response.content) < 2000  # the file is never echoed back
    if entry.status == PRICE:
        assert as_json.json()["price"] == as_form.json()["price"]


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_rotated_jpeg_prices_like_the_upright_photo(tiny_client, orientation: int) -> None:
    rotated, upright = rotated_pair(orientation)
    prices = [send_both(tiny_client, data)[i].json()["price"] for data in (rotated, upright) for i in (0, 1)]
    assert len(set(prices)) == 1, prices


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_ignoring_the_exif_rotation_would_change_the_price(contract_client, orientation: int) -> None:
    """On a model that sees where the photo is light or dark: the rotated file prices like the
    upright photo, and unlike its own pixels read as stored (what ignoring the tag would give)."""
    rotated, upright = rotated_pair(orientation, size=(32, 32))
    as_stored = encode(Image.open(io.BytesIO(rotated)).convert("RGB"), "PNG")

    def price(data: bytes) -> float:
        response = contract_client.post("/v1/predict", json={**ITEM, "image": b64(data)})
        assert response.status_code == 200, response.text
        return response.json()["price"]

    assert price(rotated) == price(upright)
    assert price(as_stored) != price(upright)
