"""Shared fixtures: a tiny generated data set and a tiny model trained and exported from it; and
the ``slow`` marker, given from the fixtures a test uses.

Generated once per session (about 200 rows, 32x32 model images), so the integration, service and
behaviour tiers all exercise the real pipeline on raw inputs without shipping fixtures. The
helpers behind them live in tests/support/ (import them from there, e.g. ``tests.support.tiny``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.server import ServiceProcess
from tests.support.tiny import generate_tiny, tiny_config, train_in

# The fixtures that train a model or start a server (a process, a uvicorn thread or a browser),
# wherever they are defined: a test that uses one, directly or through another fixture, is
# marked `slow`, so `-m "not slow"` leaves out every test that trains or serves. A test that
# trains or starts a server without such a fixture carries @pytest.mark.slow itself.
SLOW_FIXTURES = {
    # train a model
    "tiny_trained": "tests/conftest.py: the tiny model, trained and exported once a session",
    "run": "tests/integration/test_evaluate.py: the tiny model with ablations and baselines",
    "trained": "tests/model/test_behaviour.py: a 10-epoch model on 3,000 listings",
    # start a server
    "live_server": "tests/service: the app under uvicorn in a thread (conftest.py, test_service_page_browser.py)",
    "live_service": "tests/robustness/test_robustness_requests.py: `python -m service` in its own process",
    "stub_server": "tests/conftest.py: the stand-in app under uvicorn in its own process",
    "thread_server": "tests/harness/test_harness_server.py: an app under uvicorn in a thread",
    "browser": "tests/service/test_service_page_browser.py: headless Chromium",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ()))  # transitive already
        if used:
            item.add_marker(pytest.mark.slow(reason="uses " + ", ".join(sorted(used))))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """items.csv + images/ of 240 generated listings; returns the table's path."""
    return generate_tiny(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="session")
def tiny_trained(tiny_dataset, tmp_path_factory):
    """Train and export the tiny model once; returns the pipeline's result dict and its config."""
    work = tmp_path_factory.mktemp("train")
    cfg = tiny_config(tiny_dataset, work / "models")
    result = train_in(work, cfg)  # runs/ goes under the temporary folder
    return {"result": result, "config": cfg, "work": work}


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_trained) -> Path:
    """models/tiny: a folder holding version 1 of the tiny model (SavedModel + model_card.json)."""
    return Path(tiny_trained["result"]["path"]).parent


@pytest.fixture
def stub_server(tmp_path: Path) -> Iterator[ServiceProcess]:
    """The stand-in app (tests/support/stub_app.py: /readyz and /v1/predict, no model) under
    uvicorn in its own process."""
    with ServiceProcess(tmp_path / "server.log", app="tests.support.stub_app:app", ready_timeout=60) as server:
        yield server
