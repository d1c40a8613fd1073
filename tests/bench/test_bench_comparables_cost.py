"""bench/comparables_cost.py: one real short run over the trained tiny model (its own index and a
synthetic one of 3,000 listings, each served by `python -m service`), and its target and section."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import comparables_cost

pytestmark = pytest.mark.slow


def test_a_short_run_serves_both_indexes_and_reports_the_added_latency(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = comparables_cost.measure(tiny_model_dir / "1", 3000, rounds=2, block=3, work=tmp_path)
    card = json.loads((tiny_model_dir / "1" / "model_card.json").read_text())
    assert result["own"]["count"] == card["comparables"]["count"] and result["own"]["search"] == "exact"
    assert result["synthetic"]["count"] == 3000 and result["synthetic"]["dim"] == card["comparables"]["dim"]
    for label in ("own", "synthetic"):
        x = result[label]
        assert x["requests"] == 2 * 2 * 3 and len(x["round_added_ms"]) == 2
        assert math.isfinite(x["added_p50_ms"]) and x["with_ms"]["p50"] > 0 and x["without_ms"]["p50"] > 0
        assert x["added_p50_ms"] == pytest.approx(x["with_ms"]["p50"] - x["without_ms"]["p50"])
    [t] = comparables_cost.targets({"comparables_cost": result})
    assert t["name"] == "service, 1 client, in turns: 5 comparables add <= 5 ms p50 to a prediction (3,000 listings)"
    assert t["pass"] == (result["synthetic"]["added_p50_ms"] <= 5.0)
    text = "\n".join(comparables_cost.markdown({"comparables_cost": result}))
    assert "| synthetic | 3,000 | exact |" in text and f"| own | {result['own']['count']:,} | exact |" in text


def test_a_model_without_an_index_is_not_measured(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"name": "old"}))
    part = comparables_cost.run(None, tmp_path, tmp_path)
    assert "has no comparables index" in part["error"]
    [t] = comparables_cost.targets({"comparables_cost": part})
    assert t["pass"] is None
    assert comparables_cost.markdown({"comparables_cost": part})[-1].startswith("not measured (")
