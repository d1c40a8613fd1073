"""Fixtures of the service tests (their helpers: tests/support/service_testkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.support.service_testkit import (
    DEFAULT_INPUTS,
    MYNTRA_INPUTS,
    LiveServer,
    build_model,
    install_version,
    make_settings,
    wait_ready,
)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Exported tiny models, built once: ``v1`` and ``v2`` (EUR; v2 prices differ) and
    ``myntra`` (other inputs, INR). Copy them into a MODEL_DIR with ``install_version``."""
    root = tmp_path_factory.mktemp("exports")
    return {
        "v1": build_model(root / "v1", DEFAULT_INPUTS, "EUR", 40.0, 1, seed=0),
        "v2": build_model(root / "v2", DEFAULT_INPUTS, "EUR", 90.0, 2, seed=0),
        "myntra": build_model(root / "myntra", MYNTRA_INPUTS, "INR", 900.0, 1, seed=3),
    }


MAX_PHOTOS = 3  # the photo slots of ``exported_multi``


@pytest.fixture(scope="session")
def exported_multi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model of issue 17's format (built once): the default inputs, every one optional (the
    card's `missing` block), its image argument `[batch, 3]` ("" an empty slot, the photos pooled)."""
    root = tmp_path_factory.mktemp("exports_multi")
    return build_model(root / "multi", DEFAULT_INPUTS, "EUR", 40.0, 1, seed=0, max_photos=MAX_PHOTOS)


@pytest.fixture
def start_client():
    """``start_client(settings)`` -> a started TestClient (lifespan run), closed at teardown."""
    clients: list[TestClient] = []

    def start(settings: Settings, ready: bool = True, **kwargs: Any) -> TestClient:
        client = TestClient(create_app(settings), **kwargs)
        client.__enter__()
        clients.append(client)
        if ready:
            wait_ready(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def served_dir(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MODEL_DIR holding version 1 of the default model."""
    model_dir = tmp_path_factory.mktemp("served") / "price"
    install_version(exported["v1"], model_dir, 1)
    return model_dir


@pytest.fixture(scope="module")
def client(served_dir: Path) -> Iterator[TestClient]:
    """A client over version 1 with default limits, micro-batching on."""
    with TestClient(create_app(make_settings(served_dir))) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def live_server(served_dir: Path) -> Iterator[LiveServer]:
    with LiveServer(make_settings(served_dir)) as server:
        yield server
