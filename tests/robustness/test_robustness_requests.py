"""Hostile requests: huge, nested or malformed bodies, odd unicode, wrong content types, a batch of
10,000 items (in-process), then against a real uvicorn subprocess: bodies over the limit refused
from their headers, slow clients cut off by the server's timeouts while a normal client is served,
and memory that stays flat under repeated abuse. None may give a 5xx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reliability.corpus import encode, photo
from reliability.server import ServiceProcess
from tests.support.robustness_kit import FORM, ITEM, b64, settings, started

JPEG = encode(photo(), "JPEG")
GOOD = {**ITEM, "image": b64(JPEG)}
MB = 1024 * 1024


def post_raw(client, path: str, body: bytes | str, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return client.post(path, content=body, headers=headers)


def expect(response, status: int, detail: str, max_bytes: int = 4000) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.content) <= max_bytes, f"answer of {len(response.content)} bytes"
    body = response.json()
    assert detail in body["detail"], body["detail"][:500]
    return body


# ------------------------------------------------------------------ nested and huge JSON


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/predict", json.dumps(GOOD)[:-1] + ', "brand2": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("/v1/predict", "[" * 100_000 + "]" * 100_000),
        ("/v1/predict", '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("/v1/predict/batch", '{"items": [' + "{" * 1 + '"x":' + "[" * 100_000 + "]" * 100_000 + "}]}"),
    ],
    ids=["array-in-a-field", "top-level-array", "nested-objects", "in-a-batch-item"],
)
def test_deeply_nested_json_is_refused_at_once(tiny_client, path: str, body: str) -> None:
    started = time.monotonic()
    expect(post_raw(tiny_client, path, body), 422, "body is not valid JSON (recursion limit exceeded")
    assert time.monotonic() - started < 5


def test_an_object_with_200000_fields_is_refused_without_listing_them(tiny_client) -> None:
    fields = ",".join(f'"k{i}":0' for i in range(200_000))  # 2.6 MB
    started = time.monotonic()
    body = expect(
        post_raw(tiny_client, "/v1/predict", "{" + fields + "}"),
        422,
        "body: has 200000 fields; this model's inputs are: brand",
    )
    assert body["errors"][0]["type"] == "too_many_fields"
    batch = '{"items": [{' + fields + "}]}"
    expect(post_raw(tiny_client, "/v1/predict/batch", batch), 422, "items[0]: has 200000 fields")
    expect(post_raw(tiny_client, "/v1/predict/batch", '{"items": [], ' + fields + "}"), 422, "body: has 200001 fields")
    assert time.monotonic() - started < 10


def test_many_errors_are_capped_at_fifty(tiny_client) -> None:
    items = [{f"unknown{i}": i for i in range(40)} for _ in range(200)]  # 200 x 40 unknown fields (and no input given)
    response = tiny_client.post("/v1/predict/batch", json={"items": items})
    body = expect(response, 422, "items[0].unknown0: unknown field", max_bytes=20_000)
    assert len(body["errors"]) == 50


def test_a_million_element_array_in_a_field_is_a_type_error(tiny_client) -> None:
    raw = json.dumps({**GOOD, "brand": list(range(1_000_000))})
    expect(post_raw(tiny_client, "/v1/predict", raw), 422, "brand: must be a string")


# ------------------------------------------------------------------ huge strings


@pytest.mark.parametrize(
    ("field", "detail"),
    [
        ("description", "description: is longer than 5000 characters"),
        ("title", "title: is longer than 5000 characters"),
        ("brand", "brand: is longer than 200 characters"),
        ("age_months", "age_months: must be a number"),
        ("image", "image: image is not valid base64"),
    ],
)
def test_ten_megabyte_strings_are_refused_without_being_echoed(tiny_client, field: str, detail: str) -> None:
    value = ("7" if field == "age_months" else "!" if field == "image" else "x") * (10 * MB)
    expect(tiny_client.post("/v1/predict", json={**GOOD, field: value}), 422, detail, max_bytes=500)


@pytest.mark.parametrize("field", ["description", "brand"])
def test_ten_megabyte_form_fields_are_refused(tiny_client, field: str) -> None:
    response = tiny_client.post(
        "/v1/predict/upload", data={**FORM, field: "x" * (10 * MB)}, files={"image": ("a.jpg", JPEG, "image/jpeg")}
    )
    expect(response, 422, "the multipart form could not be read (Part exceeded maximum size")


def test_ten_megabytes_of_base64_zeros_is_not_an_image(tiny_client) -> None:
    expect(
        tiny_client.post("/v1/predict", json={**GOOD, "image": "A" * (10 * MB)}),
        422,
        "image: image is not a decodable image",
    )


# ------------------------------------------------------------------ unicode


@pytest.mark.parametrize(
    "text",
    [
        "👗 robe d'été 🌞 — très bon état",
        "e\u0301te\u0301 (decomposed) and été (composed)",
        "\u202egnirts desrever\u202c RTL override",
        "zero\u200bwidth\u200djoiner\ufeffBOM inside",
        "nul \x00 and control \x07\x1b characters",
        "\uffff\U0010ffff non-characters",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 " * 100,
        "\u0000",
        "",
    ],
    ids=["emoji", "combining", "rtl", "zero-width", "control", "non-characters", "astral", "nul-only", "empty"],
)
def test_unicode_text_is_priced(tiny_client, text: str) -> None:
    for field in ("title", "description", "brand"):
        response = tiny_client.post("/v1/predict", json={**GOOD, field: text[:200]})
        assert response.status_code == 200, response.text
    response = tiny_client.post(
        "/v1/predict/upload", data={**FORM, "title": text}, files={"image": ("été 👗.jpg", JPEG, "image/jpeg")}
    )
    assert response.status_code == 200, response.text


def test_length_limits_count_characters_not_bytes(tiny_client) -> None:
    assert tiny_client.post("/v1/predict", json={**GOOD, "description": "👗" * 5000}).status_code == 200
    expect(tiny_client.post("/v1/predict", json={**GOOD, "description": "👗" * 5001}), 422, "is longer than 5000")
    assert tiny_client.post("/v1/predict", json={**GOOD, "brand": "\U0010ffff" * 200}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (json.dumps(GOOD).replace('"Black midi dress"', '"\\ud800 lone surrogate"'), "not valid JSON"),
        (json.dumps(GOOD).replace('"Black midi dress"', '"\\udc00 lone trailing"'), "not valid JSON"),
        (json.dumps(GOOD).encode().replace(b"Black midi", b"Bl\xff\xfe midi"), "not valid JSON"),
        (json.dumps(GOOD).encode().replace(b"Black midi", b"Bl\xc0\xaf midi"), "not valid JSON"),  # overlong UTF-8
        (json.dumps(GOOD).encode("utf-16"), "not valid JSON"),
        (b"\xef\xbb\xbf" + json.dumps(GOOD).encode(), "not valid JSON"),
    ],
    ids=["lone-high-surrogate", "lone-low-surrogate", "invalid-utf8", "overlong-utf8", "utf16-body", "utf8-bom"],
)
def test_broken_unicode_in_json_is_a_422(tiny_client, raw, detail: str) -> None:
    expect(post_raw(tiny_client, "/v1/predict", raw), 422, detail)


def test_unicode_field_names_are_named_in_the_error(tiny_client) -> None:
    expect(tiny_client.post("/v1/predict", json={**GOOD, "bränd👗": "x"}), 422, "bränd👗: unknown field")


def test_invalid_utf8_in_a_form_field_is_read_as_latin1_and_priced(tiny_client) -> None:
    boundary = "b0und4ry"
    parts = [(f'name="{k}"', v.encode()) for k, v in FORM.items()] + [('name="title"', b"Bl\xff\xfe midi")]
    body = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; {h}\r\n\r\n".encode() + v + b"\r\n"
        for h, v in parts
        if not (h == 'name="title"' and v == FORM["title"].encode())
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + JPEG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = post_raw(tiny_client, "/v1/predict/upload", body, f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------ content types


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/xml", "image/jpeg",
     "multipart/form-data; boundary=x", "application/octet-stream", "json", "application/json-patch"],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/predict", "/v1/predict/batch"])
def test_json_routes_refuse_other_content_types(tiny_client, path: str, content_type) -> None:
    body = json.dumps({"items": [GOOD]} if path.endswith("batch") else GOOD)
    shown = content_type.split(";")[0] if content_type else "(none)"
    expect(
        post_raw(tiny_client, path, body, content_type),
        415,
        f"Content-Type '{shown}' is not accepted; send application/json",
    )


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "image/jpeg"])
def test_upload_refuses_other_content_types(tiny_client, content_type) -> None:
    shown = content_type or "(none)"
    if content_type == "application/x-www-form-urlencoded":  # a plain form is taken (the tiny card has
        # a `missing` block): the photo's bytes read as field names are unknown fields, refused, small
        expect(post_raw(tiny_client, "/v1/predict/upload", JPEG, content_type), 422, "unknown field")
        return
    expect(
        post_raw(tiny_client, "/v1/predict/upload", JPEG, content_type),
        415,
        f"Content-Type '{shown}' is not accepted; send multipart/form-data",
    )


def test_json_with_a_vendor_type_or_charset_is_read(tiny_client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.shop+json", "APPLICATION/JSON"):
        assert post_raw(tiny_client, "/v1/predict", json.dumps(GOOD), content_type).status_code == 200


# ------------------------------------------------------------------ batch of 10,000 items


def test_a_batch_of_ten_thousand_items_is_refused_quickly(tiny_client) -> None:
    started = time.monotonic()
    response = tiny_client.post("/v1/predict/batch", json={"items": [GOOD] * 10_000})  # 10 MB
    expect(response, 422, "items: must hold 1 to 256 items (MAX_BATCH_ITEMS)", max_bytes=300)
    assert time.monotonic() - started < 10


def test_ten_thousand_items_are_answered_in_order_when_allowed(tiny_model_dir: Path) -> None:
    """With MAX_BATCH_ITEMS raised to 10,000 the same batch is priced whole, in order."""
    client = started(settings(tiny_model_dir, max_batch_items=10_000))
    try:
        small = [encode(photo((8, 8), seed=s), "PNG") for s in range(4)]
        items = [{**ITEM, "age_months": float(i % 100), "image": b64(small[i % 4])} for i in range(10_000)]
        # explain=false: contributions would add 3 model rows per item (40,000 rows in all)
        response = client.post("/v1/predict/batch?explain=false", json={"items": items})
        assert response.status_code == 200, response.text[:300]
        prices = [p["price"] for p in response.json()["predictions"]]
        assert len(prices) == 10_000 and all(p > 0 for p in prices)
        assert prices[:400] == prices[400:800]  # the inputs repeat every 100 ages x 4 photos
    finally:
        client.__exit__(None, None, None)


# ------------------------------------------------------------------ a real uvicorn


@pytest.fixture(scope="module")
def live_service(tiny_model_dir: Path, tmp_path_factory) -> Iterator[ServiceProcess]:
    """The service as `python -m service` on a loopback port, with short client timeouts."""
    log = tmp_path_factory.mktemp("live") / "service.log"
    with ServiceProcess(tiny_model_dir, log, HEADER_TIMEOUT_S=2, BODY_TIMEOUT_S=3, RELOAD_INTERVAL_S=0) as service:
        yield service


def read_response(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [("POST", "/v1/predict", "application/json"), ("POST", "/v1/predict/upload", "multipart/form-data; boundary=x"),
     ("POST", "/v1/predict/batch", "application/json"), ("POST", "/healthz", "application/json"),
     ("GET", "/v1/model", "application/json")],
)  # fmt: skip
def test_a_declared_oversized_body_is_refused_before_a_byte_of_it_is_sent(
    live_service, method, path, content_type
) -> None:
    with socket.create_connection(("127.0.0.1", live_service.port), timeout=10) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {10 * 1024**3}\r\n\r\n".encode()
        )  # 10 GiB announced, nothing sent
        answer = read_response(sock, 10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["detail"].startswith("request body is larger than the limit of")


SLOW_HEAD = b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"


def drip(sock: socket.socket, data: bytes, stop: float) -> bytes | str:
    """Send ``data`` a byte at a time, reading what the server says, until it closes the
    connection (what it said) or ``stop`` comes first ("still open at the end")."""
    received, sent = b"", 0
    while time.monotonic() < stop:
        if sent < len(data):
            try:
                sock.sendall(data[sent : sent + 1])
                sent += 1
            except OSError:
                return received
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return received
        if not chunk:
            return received
        received += chunk
    return "still open at the end"


def slow_client(port: int, kind: str, stop: float) -> bytes | str:
    """``head``: the request head a byte at a time; ``silent``: connected, says nothing;
    ``body``: a whole head, then a 100 kB body a byte at a time."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as exc:
        return f"connect failed: {exc}"
    with sock:
        sock.settimeout(0.3)
        if kind == "body":
            sock.sendall(SLOW_HEAD + b"Content-Length: 100000\r\n\r\n")
            return drip(sock, b"{" + b" " * 100_000, stop)
        return drip(sock, SLOW_HEAD if kind == "head" else b"", stop)


@pytest.mark.slow
def test_slow_clients_are_cut_off_and_do_not_starve_a_normal_client(live_service) -> None:
    """60 slow connections: 30 dripping their headers a byte at a time, 10 connected and silent,
    20 dripping a body. Meanwhile a normal client is answered at its usual speed; the server
    closes the slow ones after HEADER_TIMEOUT_S=2 / BODY_TIMEOUT_S=3 (408 where one had started)."""
    live = live_service
    results: dict[str, list[bytes | str]] = {"head": [], "silent": [], "body": []}
    lock = threading.Lock()
    stop = time.monotonic() + 15  # every slow client gives up by then at the latest

    def slow(kind: str) -> None:
        outcome = slow_client(live.port, kind, stop)
        with lock:
            results[kind].append(outcome)

    threads = [threading.Thread(target=slow, args=(k,)) for k in ["head"] * 30 + ["silent"] * 10 + ["body"] * 20]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    latencies = []
    with httpx.Client(base_url=live.url, timeout=10) as client:
        while time.monotonic() - started < 6:
            t0 = time.monotonic()
            response = client.post("/v1/predict", json=GOOD)
            latencies.append(time.monotonic() - t0)
            assert response.status_code == 200, response.text
    for thread in threads:
        thread.join(20)
    assert len(latencies) >= 10 and max(latencies) < 2.0, latencies
    for kind, expected in (("head", b"HTTP/1.1 408"), ("silent", b""), ("body", b"HTTP/1.1 408")):
        outcomes = results[kind]
        assert all(isinstance(o, bytes) and o.startswith(expected) for o in outcomes), (kind, outcomes[:3])
    assert b"request headers not received within 2 s" in results["head"][0]
    assert b"request body not received within 3 s (BODY_TIMEOUT_S)" in results["body"][0]
    assert httpx.get(live.url + "/readyz", timeout=5).status_code == 200


@pytest.mark.slow
def test_memory_stays_flat_under_repeated_hostile_requests(live_service) -> None:
    """Rounds of the heaviest refused requests: the process does not keep what it refused."""
    big_fields = "{" + ",".join(f'"k{i}":0' for i in range(100_000)) + "}"
    hostile = [
        ("/v1/predict", json.dumps({**GOOD, "description": "x" * (5 * MB)}), 422),
        ("/v1/predict", big_fields, 422),
        ("/v1/predict", "[" * 50_000 + "]" * 50_000, 422),
        ("/v1/predict/batch", json.dumps({"items": [GOOD] * 2000}), 422),
        ("/v1/predict", json.dumps({**GOOD, "image": "A" * (8 * MB)}), 422),
    ]
    rss = []
    with httpx.Client(base_url=live_service.url, timeout=30) as client:
        for _ in range(6):
            for path, body, status in hostile:
                response = client.post(path, content=body, headers={"content-type": "application/json"})
                assert response.status_code == status, response.text[:200]
            rss.append(live_service.rss_bytes())
    growth = (rss[-1] - rss[1]) / rss[1]
    assert growth < 0.05, [round(r / MB) for r in rss]
