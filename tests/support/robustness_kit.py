"""Helpers of the robustness tests: the seller's item, settings, a started in-process client."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.support.service_testkit import GOOD_ITEM, wait_ready

ITEM: dict[str, Any] = dict(GOOD_ITEM)  # the inputs of the default model, as a seller fills them in
FORM = {k: str(v) for k, v in ITEM.items()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def settings(model_dir: Path, **overrides: Any) -> Settings:
    """The service's settings for a test: reload off, one warm-up call, quiet logs."""
    values: dict[str, Any] = {
        "model_dir": model_dir,
        "reload_interval_s": 0,
        "warmup_runs": 1,
        "log_level": "WARNING",
        "api_key": None,
    }
    return Settings(**{**values, **overrides})


def started(app_settings: Settings) -> TestClient:
    """A TestClient whose lifespan ran and whose model is loaded (close it with __exit__)."""
    client = TestClient(create_app(app_settings))
    client.__enter__()
    wait_ready(client)
    return client
