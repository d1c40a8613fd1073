"""Auth, health and readiness, metrics and the per-request log line."""

from __future__ import annotations

import base64
import logging
import re

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.support.service_testkit import (
    GOOD_ITEM,
    image_bytes,
    install_version,
    make_settings,
    wait_ready,
)

KEY = "s3cret-key-123"


def item() -> dict:
    return {**GOOD_ITEM, "image": base64.b64encode(image_bytes("JPEG")).decode()}


@pytest.fixture(scope="module")
def keyed_client(served_dir):
    with TestClient(create_app(make_settings(served_dir, api_key=KEY))) as client:
        wait_ready(client)
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": KEY},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "no-scheme", "basic", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/v1/predict"), ("post", "/v1/predict/upload"), ("post", "/v1/predict/batch"), ("get", "/v1/model")],
)
def test_v1_routes_need_the_bearer_key(keyed_client, headers, method, path) -> None:
    response = getattr(keyed_client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == ("missing or wrong API key: send the header 'Authorization: Bearer <API_KEY>'")


def test_the_right_key_is_accepted(keyed_client) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    response = keyed_client.post("/v1/predict", json=item(), headers=headers)
    assert response.status_code == 200 and response.json()["currency"] == "EUR"
    assert keyed_client.get("/v1/model", headers=headers).status_code == 200
    assert (
        keyed_client.post(
            "/v1/predict/batch", json={"items": [item()]}, headers={"authorization": f"bearer {KEY}"}
        ).status_code
        == 200
    )


def test_health_ready_metrics_and_page_stay_open(keyed_client) -> None:
    assert keyed_client.get("/healthz").json() == {"status": "ok"}
    assert keyed_client.get("/readyz").json() == {"status": "ready", "model_version": "1"}
    assert keyed_client.get("/metrics").status_code == 200
    page = keyed_client.get("/")
    assert page.status_code == 200 and 'id="api-key"' in page.text


def test_no_key_configured_means_open(client) -> None:
    assert client.post("/v1/predict", json=item()).status_code == 200
    assert 'id="api-key"' not in client.get("/").text


def test_not_ready_before_a_model_then_ready(exported, tmp_path, start_client) -> None:
    model_dir = tmp_path / "price"
    model_dir.mkdir()
    client = start_client(make_settings(model_dir, reload_interval_s=0.1), ready=False)
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["detail"] == "no model is loaded yet"
    response = client.post("/v1/predict", json=item())
    assert response.status_code == 503
    assert response.json()["detail"] == "no model is loaded yet; retry shortly (see GET /readyz)"
    assert client.get("/").status_code == 503
    install_version(exported["v1"], model_dir, 1)
    wait_ready(client, "1")
    assert client.post("/v1/predict", json=item()).status_code == 200


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in /metrics")


def test_metrics_count_requests_latency_batches_and_version(exported, tmp_path, start_client) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir))
    for _ in range(3):
        assert client.post("/v1/predict", json=item()).status_code == 200
    assert client.post("/v1/predict", json={}).status_code == 422
    assert client.post("/v1/predict/batch", json={"items": [item()] * 5}).status_code == 200
    assert client.get("/no/such/page").status_code == 404
    text = client.get("/metrics").text
    assert metric(text, "http_requests_total", route="/v1/predict", method="POST", status="200") == 3
    assert metric(text, "http_requests_total", route="/v1/predict", method="POST", status="422") == 1
    assert metric(text, "http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert metric(text, "http_request_duration_seconds_count", route="/v1/predict") == 4
    assert metric(text, "http_request_duration_seconds_bucket", route="/v1/predict", le="+Inf") == 4
    # three sequential single rows, then one call for the batch of 5 (warm-up is not counted)
    assert metric(text, "model_batch_size_bucket", le="1.0") == 3
    assert metric(text, "model_batch_size_bucket", le="4.0") == 3
    assert metric(text, "model_batch_size_bucket", le="8.0") == 4
    assert metric(text, "model_batch_size_sum") == 8
    assert metric(text, "model_version") == 1
    assert metric(text, "model_info", version="1", currency="EUR") == 1
    assert metric(text, "model_loads_total", result="loaded") == 1


def test_one_log_line_per_request_without_image_or_key(exported, tmp_path, start_client, caplog) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir, api_key=KEY))
    body = item()
    with caplog.at_level(logging.INFO, logger="service.access"):
        caplog.clear()
        response = client.post("/v1/predict", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 200
        client.post("/v1/predict/batch", json={"items": [body, body]}, headers={"Authorization": f"Bearer {KEY}"})
        client.post("/v1/predict", json=body, headers={"Authorization": "Bearer nope"})
    lines = [r.getMessage() for r in caplog.records if r.name == "service.access"]
    assert len(lines) == 3
    assert re.fullmatch(
        r"method=POST route=/v1/predict status=200 latency_ms=\d+\.\d model_version=1 "
        r"batch_size=1 items=1",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        r"method=POST route=/v1/predict/batch status=200 latency_ms=\d+\.\d model_version=1 "
        r"batch_size=2 items=2",
        lines[1],
    ), lines[1]
    assert lines[2].startswith("method=POST route=/v1/predict status=401 ")
    everything = caplog.text
    assert KEY not in everything and "nope" not in everything
    assert body["image"][:40] not in everything
