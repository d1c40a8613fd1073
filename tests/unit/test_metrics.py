"""price_metrics: the figures every model is compared by, checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import price_metrics


def test_metrics_match_hand_computed_values():
    # log ratios 0, log 1.25, log 0.5; absolute errors 0, 5, 20; relative errors 0, 0.25, 0.5
    m = price_metrics(np.array([10.0, 20.0, 40.0]), np.array([10.0, 25.0, 20.0]))
    assert m["rmsle"] == pytest.approx(math.sqrt((math.log(1.25) ** 2 + math.log(0.5) ** 2) / 3))
    assert m["rmsle"] == pytest.approx(0.420415, abs=1e-6)
    assert m["mae"] == pytest.approx(25 / 3)
    assert m["mape"] == pytest.approx(0.25)
    assert m["medape"] == pytest.approx(0.25)
    # ss_res = 0 + 25 + 400; ss_tot around the mean 70/3 = 1400/3
    assert m["r2"] == pytest.approx(1 - 425 / (1400 / 3))
    assert m["within_20pct"] == pytest.approx(1 / 3)
    assert m["n"] == 3


def test_perfect_predictions_score_perfectly():
    y = np.array([3.5, 12.0, 99.0, 250.0])
    m = price_metrics(y, y.copy())
    assert m == {"rmsle": 0.0, "mae": 0.0, "mape": 0.0, "medape": 0.0, "r2": 1.0, "within_20pct": 1.0, "n": 4}


def test_rmsle_is_symmetric_in_ratio_and_mape_is_not():
    y = np.array([100.0, 100.0])
    over, under = price_metrics(y, np.array([200.0, 200.0])), price_metrics(y, np.array([50.0, 50.0]))
    assert over["rmsle"] == pytest.approx(math.log(2)) and under["rmsle"] == pytest.approx(math.log(2))
    assert over["mape"] == pytest.approx(1.0) and under["mape"] == pytest.approx(0.5)
    assert over["mae"] == pytest.approx(100.0) and under["mae"] == pytest.approx(50.0)


def test_within_20pct_counts_the_boundary_and_excludes_beyond():
    m = price_metrics(np.array([10.0, 10.0, 10.0, 10.0]), np.array([12.0, 8.0, 12.5, 7.9]))
    assert m["within_20pct"] == pytest.approx(0.5)


def test_median_ape_ignores_one_wild_prediction():
    m = price_metrics(np.array([10.0, 10.0, 10.0]), np.array([11.0, 9.0, 1000.0]))
    assert m["medape"] == pytest.approx(0.1)
    assert m["mape"] == pytest.approx((0.1 + 0.1 + 99.0) / 3)


def test_non_positive_predictions_stay_finite():
    m = price_metrics(np.array([10.0, 20.0]), np.array([0.0, -5.0]))
    assert all(math.isfinite(v) for v in m.values())
    assert m["rmsle"] > 20  # log(1e-9) is far from any price
    assert m["within_20pct"] == 0.0


def test_a_branch_helps_only_by_more_than_noise():
    """Leave-one-out deltas under 0.5% of the full model's RMSLE are not called help."""
    from training.report import format_checks

    lines = dict((text.split(":")[0], ok) for text, ok in format_checks(
        {"full_rmsle": 0.177, "rmsle_increase_without": {"image": 0.0001, "text": 0.0673, "metadata": -0.01}}))
    assert lines == {"the image branch makes no clear difference": False, "the text branch helps": True,
                     "the metadata branch does NOT help": False}
