"""Fixtures of the robustness tests: the tiny model trained by the pipeline (tests/conftest.py)
served in-process, and an orientation-sensitive contract model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.robustness_kit import settings, started
from tests.support.service_testkit import DEFAULT_INPUTS, build_model, install_version


@pytest.fixture(scope="session")
def tiny_client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """The tiny trained model behind the app, in-process, default limits."""
    client = started(settings(tiny_model_dir))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def contract_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A hand-built contract model whose price depends on where the photo is light or dark, so
    an orientation that was ignored changes the price (tests/support/service_testkit.py)."""
    root = tmp_path_factory.mktemp("contract")
    install_version(build_model(root / "export", DEFAULT_INPUTS, "EUR", 40.0, 1, seed=0), root / "price", 1)
    client = started(settings(root / "price"))
    yield client
    client.__exit__(None, None, None)
