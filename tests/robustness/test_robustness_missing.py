"""The shapes of issue 17 that `make fuzz` and `make soak` send (reliability/shapes.py): listings
with each kind of missing input, several photos in JSON and multipart, one bad photo among
several, nothing given, batches mixing them. Each gets the answer the contract calls for (its
status, the `missing` list of a price, the `loc` of a refusal), on the tiny model the pipeline
trains (a card with `missing` and 4 photos) and on an older card (today's answers), never a 5xx."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability.mix import Kind, build_mix
from reliability.shapes import PHOTOS, b64, random_kinds, shape_kinds
from tests.support.service_testkit import DEFAULT_INPUTS


def served_card(optional: bool, max_photos: int) -> dict[str, Any]:
    """A `GET /v1/model` answer for the default inputs, without a model behind it."""
    inputs = [dict(spec, examples=[]) for spec in DEFAULT_INPUTS]
    return {
        "inputs": inputs,
        "served": {
            "optional_inputs": optional,
            "max_photos": {"image": max_photos},
            "input_groups": {
                "metadata": ["brand", "category", "condition", "size", "colour", "age_months"],
                "text": ["title", "description"],
                "image": ["image"],
            },
        },
    }


def answers(client: TestClient, kinds: list[Kind]) -> tuple[dict[int, int], list[str]]:
    """Send every kind; the statuses and the answers that are not the expected ones."""
    statuses: dict[int, int] = {}
    problems = []
    for kind in kinds:
        response = client.request(kind.method, kind.path, content=kind.content, headers=kind.headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        problem = kind.check(response.status_code, response.content)
        if problem:
            problems.append(f"{kind.name}: {problem}; {response.text[:300]}")
    return statuses, problems


def by_name(kinds: list[Kind]) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


def test_the_shapes_cover_each_case_of_the_issue() -> None:
    kinds = by_name(shape_kinds(served_card(optional=True, max_photos=4)))
    missing = {name: kinds[name].missing for name in ("no photo", "no text", "no metadata", "only a photo")}
    assert missing == {
        "no photo": (("image",),),
        "no text": (("title", "description"),),
        "no metadata": (("brand", "category", "condition", "size", "colour", "age_months"),),
        "only a photo": (("brand", "category", "condition", "size", "colour", "age_months", "title", "description"),),
    }
    assert kinds["only a title"].missing == (
        ("brand", "category", "condition", "size", "colour", "age_months", "description", "image"),
    )
    assert kinds["nulls for the metadata"].missing == (
        ("brand", "category", "condition", "size", "colour", "age_months"),
    )
    assert kinds["empty strings"].missing == (
        ("brand", "category", "condition", "size", "colour", "title", "description"),
    )
    assert kinds["an unknown category is not missing"].missing[0][0] == "category"  # brand was given
    for k in range(1, 5):
        assert kinds[f"{k} photo(s) in images"].missing == ((),)
        assert kinds[f"upload with {k} photo(s)"].missing == ((),)
        assert len(json.loads(kinds[f"{k} photo(s) in images"].content)["images"]) == k
    assert (kinds["5 photos in images"].expected, kinds["5 photos in images"].loc) == ({422}, ("images",))
    assert (kinds["upload with 5 photos"].expected, kinds["upload with 5 photos"].loc) == ({422}, ("image",))
    for name in ("nothing given ({})", "only nulls and blanks", "only images: []", "upload of nothing"):
        assert (kinds[name].expected, kinds[name].loc) == ({422}, ()), name
    svg = kinds["bad photo among several: SVG"]
    assert (svg.expected, svg.loc) == ({415}, ("images", 2))
    assert kinds["bad part among several: PNG declaring 50000x50000"].loc == ("image", 2)
    assert kinds["batch with a bad photo among several"].loc == ("items", 1, "images", 1)
    assert kinds["batch with an item giving nothing"].loc == ("items", 1)
    batch = kinds["batch of 6 with different missing inputs"]
    assert len(set(batch.missing)) == 6  # every item lacks something else
    assert all(not k.expected & set(range(500, 600)) for k in kinds.values())


def test_an_older_card_gets_the_same_shapes_with_todays_answers() -> None:
    kinds = by_name(shape_kinds(served_card(optional=False, max_photos=1)))
    assert (kinds["no photo"].expected, kinds["no photo"].loc) == ({422}, ("image",))
    assert (kinds["only a title"].expected, kinds["only a title"].loc) == ({422}, ("brand",))
    assert (kinds["images on an older card"].expected, kinds["images on an older card"].loc) == ({422}, ("images",))
    assert kinds["upload with 2 photos on an older card"].loc == ("image",)
    assert kinds["empty strings"].missing == ((),)  # a blank category is an unknown one there
    assert "1 photo(s) in images" not in kinds
    mix = by_name(build_mix(served_card(optional=False, max_photos=1)))
    assert (mix["missing field"].expected, mix["missing field"].loc) == ({422}, ("brand",))
    assert by_name(build_mix(served_card(optional=True, max_photos=4)))["missing field"].missing == (("brand",),)


def test_random_shapes_follow_the_contract_oracle() -> None:
    card = served_card(optional=True, max_photos=4)
    kinds = random_kinds(card, random.Random(5), 300)
    again = random_kinds(card, random.Random(5), 300)  # seeded: the same requests each run (but the boundaries)
    assert [(k.path, k.expected, k.loc, k.missing) for k in kinds] == [
        (k.path, k.expected, k.loc, k.missing) for k in again
    ]
    paths = {k.path for k in kinds}
    assert paths == {"/v1/predict", "/v1/predict/batch", "/v1/predict/upload"}
    statuses = {s for k in kinds for s in k.expected}
    assert {200, 413, 415, 422} <= statuses
    for kind in kinds:
        if kind.path == "/v1/predict" and kind.expected == {200}:
            body = json.loads(kind.content)
            assert len(body.get("images") or []) <= 4
        if kind.loc is not None and len(kind.loc) >= 2 and kind.loc[-2] in ("images", "image"):
            assert isinstance(kind.loc[-1], int)  # a bad photo among several: its index


def test_the_check_reports_a_wrong_answer() -> None:
    kind = Kind("k", 1, "POST", "/v1/predict", frozenset({200}), missing=(("image",),))
    assert kind.check(200, b'{"price": 3, "missing": ["image"]}') is None
    assert "expected [['image']]" in kind.check(200, b'{"price": 3, "missing": []}')
    assert "status 500" in kind.check(500, b"")
    refusal = Kind("k", 1, "POST", "/v1/predict", frozenset({422}), loc=("images", 1))
    assert refusal.check(422, b'{"detail": "", "errors": [{"loc": ["images", 1], "msg": "", "type": ""}]}') is None
    assert "expected one at ['images', 1]" in refusal.check(422, b'{"detail": "", "errors": [{"loc": ["images"]}]}')
    batch = Kind("b", 1, "POST", "/v1/predict/batch", frozenset({200}), missing=((), ("title",)))
    assert batch.check(200, b'{"predictions": [{"missing": []}, {"missing": ["title"]}]}') is None


def test_the_fuzz_hooks_put_a_photo_in_every_slot() -> None:
    pytest.importorskip("schemathesis")
    from reliability.fuzz_hooks import _replace

    photo = PHOTOS[3]
    body = _replace({"title": "x", "images": ["a", "b", "c", "d", "e"]}, photo)
    assert body == {"title": "x", "images": [b64(photo)] * 5}  # five: still refused for its length
    assert _replace({"image": [b"a", b"b"], "brand": "zara"}, photo) == {"image": [photo, photo], "brand": "zara"}
    assert _replace({"brand": "zara"}, photo) == {"brand": "zara"}  # no photo field is added
    assert _replace({"items": [{"images": ["a"]}, {"image": "b"}]}, photo) == {
        "items": [{"images": [b64(photo)]}, {"image": b64(photo)}]
    }


def test_every_shape_gets_its_answer_from_the_tiny_model(tiny_client: TestClient) -> None:
    card = tiny_client.get("/v1/model").json()
    # the tiny model of the pipeline (harness/models.py's recipe) is of issue 17's format
    assert card["served"]["optional_inputs"] is True and card["served"]["max_photos"] == {"image": 4}
    kinds = shape_kinds(card) + random_kinds(card, random.Random(11), 150) + build_mix(card)
    statuses, problems = answers(tiny_client, kinds)
    assert not problems, "\n".join(problems[:20])
    assert {200, 413, 415, 422} <= set(statuses) and not any(s >= 500 for s in statuses), statuses


def test_an_older_card_answers_every_shape_as_today(contract_client: TestClient) -> None:
    card = contract_client.get("/v1/model").json()
    assert card["served"]["optional_inputs"] is False and card["served"]["max_photos"] == {"image": 1}
    kinds = shape_kinds(card) + random_kinds(card, random.Random(11), 60)
    statuses, problems = answers(contract_client, kinds)
    assert not problems, "\n".join(problems[:20])
    assert not any(s >= 500 for s in statuses), statuses
