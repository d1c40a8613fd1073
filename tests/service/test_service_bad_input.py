"""Every bad input of issue 3 item 6: a 4xx with a JSON ``detail`` naming the field, never a 5xx."""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import struct
import threading
import zlib
from typing import Any

import pytest

from tests.support.service_testkit import GOOD_ITEM, image_bytes, install_version, make_settings


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def item(**changes: Any) -> dict[str, Any]:
    return {**GOOD_ITEM, "image": b64(image_bytes("JPEG")), **changes}


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in item().items() if k != name}


def expect(response, status: int, detail: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert detail in body["detail"], body
    return body


def bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b"")


JSON_CASES = [
    ("missing field", without("brand"), 422, "brand: field required"),
    ("missing image", without("image"), 422, "image: field required"),
    (
        "unknown field",
        item(colour2="red"),
        422,
        "colour2: unknown field; this model's inputs are: brand, category, condition",
    ),
    ("number for a string", item(brand=12), 422, "brand: must be a string"),
    ("null for a string", item(title=None), 422, "title: must be a string"),
    ("text for a number", item(age_months="twelve"), 422, "age_months: must be a number"),
    ("list for a number", item(age_months=[1]), 422, "age_months: must be a number"),
    ("number for the image", item(image=5), 422, "image: must be a string"),
    (
        "out of range above",
        item(age_months=241.0),
        422,
        "age_months: is out of range: accepted 0 to 240 (seen in training: 0 to 120)",
    ),
    ("out of range below", item(age_months=-1.0), 422, "age_months: is out of range"),
    ("category too long", item(brand="z" * 201), 422, "brand: is longer than 200 characters"),
    ("text too long", item(description="x" * 5001), 422, "description: is longer than 5000"),
    ("empty image", item(image=""), 422, "image: image is empty"),
    ("not base64", item(image="%%% not base64 %%%"), 422, "image: image is not valid base64"),
    ("text as image", item(image=b64(b"just some text")), 422, "image: image is text, not an image"),
    (
        "garbage as image",
        item(image=b64(bytes(range(256)))),
        422,
        "image: image is not a decodable image",
    ),
    (
        "truncated jpeg",
        item(image=b64(image_bytes("JPEG", size=(64, 64), noise=True)[:3000])),
        422,
        "image: image is truncated or corrupt",
    ),
    (
        "truncated png",
        item(image=b64(image_bytes("PNG", size=(64, 64), noise=True)[:3000])),
        422,
        "image: image is truncated or corrupt",
    ),
    (
        "svg",
        item(image=b64(b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>')),
        415,
        "image: SVG images are not accepted; send a JPEG, PNG, WebP or GIF photo",
    ),
    (
        "svg data uri",
        item(image="data:image/svg+xml;base64," + b64(b"<svg/>")),
        415,
        "image: SVG images are not accepted",
    ),
    ("bmp", item(image=b64(image_bytes("BMP"))), 415, "image: BMP images are not accepted"),
    (
        "decompression bomb",
        item(image=b64(bomb_png(50_000, 50_000))),
        413,
        "image: image has 2500000000 pixels, over the limit of 50000000 (MAX_IMAGE_PIXELS)",
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "detail"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_predict_rejects(client, case: str, body: dict, status: int, detail: str) -> None:
    expect(client.post("/v1/predict", json=body), status, detail)


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"brand": "zara", ', "body: body is not valid JSON"),
        (b"[1, 2, 3]", "body: must be a JSON object"),
        (b'"a string"', "body: must be a JSON object"),
        (b"", "body: body is empty"),
    ],
)
def test_predict_rejects_bodies_that_are_not_an_object(client, raw: bytes, detail: str) -> None:
    response = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    expect(response, 422, detail)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_predict_rejects_non_finite_json_literals(client, literal: str) -> None:
    raw = json.dumps(item()).replace('"age_months": 12.0', f'"age_months": {literal}')
    assert literal in raw
    response = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    expect(response, 422, "age_months: must be a finite number")


def test_predict_needs_a_json_content_type(client) -> None:
    response = client.post("/v1/predict", content=json.dumps(item()), headers={"content-type": "text/plain"})
    expect(response, 415, "Content-Type 'text/plain' is not accepted; send application/json")


def test_several_errors_are_all_named(client) -> None:
    body = expect(
        client.post("/v1/predict", json={**without("brand"), "age_months": "x", "extra": 1}),
        422,
        "brand: field required",
    )
    assert {tuple(e["loc"]) for e in body["errors"]} == {("brand",), ("age_months",), ("extra",)}


def test_batch_errors_name_the_index_and_field(client) -> None:
    items = [item(), item(age_months=float("inf")), item(), item(image=b64(b"no image here"))]
    raw = json.dumps({"items": items}).replace("Infinity", "1e999")
    response = client.post("/v1/predict/batch", content=raw, headers={"content-type": "application/json"})
    body = expect(response, 422, "items[1].age_months: must be a finite number")
    assert body["errors"] == [
        {"loc": ["items", 1, "age_months"], "msg": "must be a finite number", "type": "finite_number"}
    ]
    response = client.post("/v1/predict/batch", json={"items": [item(), item(), item(image="")]})
    expect(response, 422, "items[2].image: image is empty")
    response = client.post("/v1/predict/batch", json={"items": [item(), without("title")]})
    expect(response, 422, "items[1].title: field required")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"items": []}, "items: must hold 1 to 256 items (MAX_BATCH_ITEMS)"),
        ({}, "items: field required"),
        ({"items": [item()], "more": 1}, "more: unknown field"),
        ({"items": {"a": 1}}, "items: must be a JSON array"),
    ],
)
def test_batch_rejects_bad_shapes(client, body: dict, detail: str) -> None:
    expect(client.post("/v1/predict/batch", json=body), 422, detail)


def test_batch_over_max_items_is_refused(exported, tmp_path, start_client) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir, max_batch_items=3))
    response = client.post("/v1/predict/batch", json={"items": [item()] * 4})
    expect(response, 422, "items: must hold 1 to 3 items (MAX_BATCH_ITEMS)")


def form(**changes: Any) -> dict[str, str]:
    return {k: str(v) for k, v in {**GOOD_ITEM, **changes}.items()}


def text_parts(fields: dict[str, str]) -> list[tuple[str, tuple[None, str]]]:
    """Form fields sent as multipart text parts (a multipart form with no file)."""
    return [(name, (None, value)) for name, value in fields.items()]


def photo(data: bytes | None = None) -> dict[str, Any]:
    return {"image": ("photo.jpg", data if data is not None else image_bytes("JPEG"), "image/jpeg")}


@pytest.mark.parametrize(
    ("fields", "files", "status", "detail"),
    [
        ({}, text_parts(form()), 422, "image: file part required"),
        ({}, text_parts({**form(), "image": "aGVsbG8="}), 422, "image: must be a file part of the form"),
        ({k: v for k, v in form().items() if k != "size"}, photo(), 422, "size: field required"),
        (form(age_months="abc"), photo(), 422, "age_months: must be a number"),
        (form(age_months="nan"), photo(), 422, "age_months: must be a finite number"),
        (form(age_months="inf"), photo(), 422, "age_months: must be a finite number"),
        (form(age_months="1000"), photo(), 422, "age_months: is out of range"),
        ({**form(), "colour2": "red"}, photo(), 422, "colour2: unknown field"),
        (form(), {"photo": ("a.jpg", image_bytes("JPEG"), "image/jpeg")}, 422, "photo: unknown file part"),
        (form(), photo(b""), 422, "image: image is empty"),
        (form(), photo(b"plain text, no photo"), 422, "image: image is text, not an image"),
        (
            form(),
            photo(image_bytes("JPEG", size=(64, 64), noise=True)[:3000]),
            422,
            "image: image is truncated or corrupt",
        ),
        (form(), photo(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), 415, "image: SVG images are not accepted"),
        (
            form(),
            photo(bomb_png(12_000, 12_000)),
            413,
            "image: image is 12000x12000 = 144000000 pixels, over the limit of 50000000 (MAX_IMAGE_PIXELS)",
        ),
    ],
)
def test_upload_rejects(client, fields, files, status: int, detail: str) -> None:
    response = client.post("/v1/predict/upload", data=fields, files=files or None)
    expect(response, status, detail)


def test_upload_needs_multipart(client) -> None:
    response = client.post("/v1/predict/upload", json=item())
    expect(response, 415, "Content-Type 'application/json' is not accepted; send multipart/form-data")


@pytest.mark.parametrize(
    ("content_type", "files", "detail"),
    [
        ("multipart/form-data", None, "body: the multipart form could not be read (Missing boundary"),
        (None, {"title": (None, "x" * 30_000)}, "body: the multipart form could not be read (Part exceeded"),
    ],
    ids=["no-boundary", "oversized-text-part"],
)
def test_upload_rejects_malformed_multipart(client, content_type, files, detail) -> None:
    if content_type:
        response = client.post("/v1/predict/upload", content=b"--x\r\n", headers={"content-type": content_type})
    else:
        response = client.post("/v1/predict/upload", files={**photo(), **files})
    expect(response, 422, detail)


def test_upload_rejects_two_photos(client) -> None:
    files = [("image", ("a.jpg", image_bytes("JPEG"), "image/jpeg"))] * 2
    response = client.post("/v1/predict/upload", data=form(), files=files)
    expect(response, 422, "image: given more than once")


@pytest.fixture
def small_limits_client(exported, tmp_path, start_client):
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    return start_client(make_settings(model_dir, max_image_bytes=20_000, max_image_pixels=10_000))


def test_image_over_max_image_bytes_is_413(small_limits_client) -> None:
    big = image_bytes("PNG", size=(90, 90), noise=True)  # 24 kB of noise
    assert len(big) > 20_000
    expect(
        small_limits_client.post("/v1/predict/upload", data=form(), files=photo(big)),
        413,
        f"image: image is {len(big)} bytes, over the limit of 20000 bytes (MAX_IMAGE_BYTES)",
    )
    expect(
        small_limits_client.post("/v1/predict", json=item(image=b64(big))),
        413,
        "image: image is larger than the limit of 20000 bytes (MAX_IMAGE_BYTES)",
    )


def test_image_over_max_image_pixels_is_413(small_limits_client) -> None:
    response = small_limits_client.post("/v1/predict", json=item(image=b64(image_bytes("JPEG", size=(120, 100)))))
    expect(response, 413, "image: image is 120x100 = 12000 pixels, over the limit of 10000 (MAX_IMAGE_PIXELS)")


def test_body_over_the_limit_is_413_from_content_length(small_limits_client) -> None:
    huge = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    response = small_limits_client.post("/v1/predict", content=huge, headers={"content-type": "application/json"})
    expect(response, 413, "request body is larger than the limit of")


def test_chunked_body_over_the_limit_is_413(small_limits_client) -> None:
    def chunks():
        for _ in range(64):
            yield b" " * (128 * 1024)  # 8 MiB in all, with no Content-Length

    response = small_limits_client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    expect(response, 413, "request body is larger than the limit of")


@pytest.mark.slow
def test_streamed_body_is_cut_off_before_it_is_read_whole(live_server) -> None:
    """Against uvicorn: a chunked upload with no Content-Length is answered 413 as soon as the
    counted bytes pass the limit, while the client is still sending."""
    total = 64 * 1024 * 1024  # far above /v1/predict's limit (~15 MB with the defaults)
    chunk = b"x" * (256 * 1024)
    sent = 0

    def send_body(sock: socket.socket) -> None:
        nonlocal sent
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed, or the test shut the socket
            pass

    with socket.create_connection(("127.0.0.1", live_server.port), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sender = threading.Thread(target=send_body, args=(sock,))
        sender.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
        while len(body) < length:
            body += sock.recv(65536)
        sent_when_answered = sent
        sock.shutdown(socket.SHUT_RDWR)
        sender.join(30)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body)["detail"].startswith("request body is larger than the limit of")
    assert sent_when_answered < total


def test_random_garbage_never_gives_a_5xx(client) -> None:
    rng = random.Random(1234)
    good = item()
    statuses = []
    for _ in range(40):
        kind = rng.choice(["bytes", "json", "image", "form"])
        if kind == "bytes":
            response = client.post(
                "/v1/predict",
                content=rng.randbytes(rng.randint(0, 2000)),
                headers={"content-type": "application/json"},
            )
        elif kind == "json":
            body = dict(good)
            key = rng.choice(list(body))
            body[key] = rng.choice([None, True, -1e9, [], {}, "", "\x00" * 10, 1e-300, "é" * 300])
            response = client.post(rng.choice(["/v1/predict", "/v1/predict/batch"]), json=body)
        elif kind == "image":
            data = bytearray(image_bytes(rng.choice(["JPEG", "PNG", "GIF", "WEBP"]), size=(24, 24)))
            for _ in range(rng.randint(1, 30)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            response = client.post("/v1/predict", json=item(image=b64(bytes(data))))
        else:
            data = rng.randbytes(rng.randint(0, 500))
            response = client.post("/v1/predict/upload", data=form(), files=photo(data))
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        assert "detail" in response.json() or response.status_code == 200
    assert any(s >= 400 for s in statuses)
