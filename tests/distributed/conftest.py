"""Fixtures of the multi-worker tests (their helpers: tests/support/workers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny import generate_tiny


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """400 generated listings (more test rows than tiny_dataset, so RMSLE comparisons are steadier)."""
    return generate_tiny(tmp_path_factory.mktemp("data") / "small", rows=400)
