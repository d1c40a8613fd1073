"""A short schemathesis run (reliability/fuzz.py) against a real uvicorn serving the tiny model:
at least 500 cases generated from /openapi.json over every route, with API_KEY set (so missing
and wrong keys are fuzzed too); no 5xx, every response conforms to the schema. Then the shapes of
issue 17 (missing inputs, several photos, a bad photo among several, nothing given), each with
the answer it must get. `make fuzz` runs the long version, with and without a key."""

from __future__ import annotations

import pytest

from reliability.fuzz import fuzz, summary


@pytest.mark.slow
def test_schema_fuzz_finds_no_5xx_and_no_schema_violation(tiny_model_dir, tmp_path) -> None:
    result = fuzz(tiny_model_dir, max_examples=50, seed=7, modes=("api_key",), work=tmp_path)
    [run] = result["runs"]
    assert result["passed"], summary(result) + "\n" + run["output_tail"]
    assert result["cases"] >= 500, summary(result)
    assert run["operations_tested"] == run["operations_total"] == 9  # the comparables thumbnail route too
    assert run["server_5xx"] == 0 and run["unhandled_errors_logged"] == 0
    assert run["server_statuses"].get("401", 0) > 0  # the key was fuzzed as well
    shapes = run["shapes"]
    assert shapes["card"] == "missing inputs allowed, up to 4 photos"  # the tiny model is of issue 17's format
    assert shapes["unexpected"] == 0 and shapes["five_xx"] == 0, shapes["unexpected_examples"]
    assert shapes["fixed"] >= 60 and shapes["random"] == 50
    assert {"200", "413", "415", "422"} <= set(shapes["by_status"])
    assert set(shapes["by_route"]) == {"/v1/predict", "/v1/predict/batch", "/v1/predict/upload"}
