"""The conformal price range on synthetic numbers: ranks, the finite-sample correction, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluation import interval


def test_quantiles_are_the_corrected_order_statistics():
    r = np.arange(1.0, 20.0)  # n = 19: ranks floor(20 * 0.1) = 2 and ceil(20 * 0.9) = 18
    assert interval.conformal_quantiles(np.random.default_rng(0).permutation(r), 0.8) == (2.0, 18.0, True)
    r = np.arange(1.0, 100.0)  # n = 99, level 0.9: ranks 5 and 95
    assert interval.conformal_quantiles(r, 0.9) == (5.0, 95.0, True)
    # n = 9, level 0.8: (n + 1) * 0.9 is 9.000000000000002 in floating point; the rank is still 9
    assert interval.conformal_quantiles(np.arange(1.0, 10.0), 0.8) == (1.0, 9.0, True)


def test_too_few_rows_fall_back_to_the_extremes_and_say_so():
    q_low, q_high, exact = interval.conformal_quantiles([0.3, -0.2, 0.1, 0.0, -0.4], 0.95)
    assert (q_low, q_high, exact) == (-0.4, 0.3, False)
    block = interval.calibrate(np.exp([0.3, -0.2, 0.1, 0.0, -0.4]), np.zeros(5))
    assert block["too_few_rows_for"] == [0.8, 0.9, 0.95]  # n = 5 holds ranks 1 and 5 of level 0.5 only


def test_calibrate_writes_every_level_and_widens_to_hold_the_point_estimate():
    rng = np.random.default_rng(1)
    biased = rng.normal(0.5, 0.1, 500)  # the model is far too low: every residual is positive
    block = interval.calibrate(np.exp(biased), np.zeros(500), level=0.8)
    assert block["level"] == 0.8 and block["n"] == 500 and block["calibration_split"] == "valid"
    assert list(block["quantiles"]) == ["0.5", "0.8", "0.9", "0.95"]
    for q_low, q_high in block["quantiles"].values():
        assert q_low == 0.0 < q_high  # widened down to the prediction itself
    assert "too_few_rows_for" not in block
    assert list(interval.calibrate(np.ones(50), np.zeros(50), level=0.7)["quantiles"]) == [
        "0.5",
        "0.7",
        "0.8",
        "0.9",
        "0.95",
    ]
    with pytest.raises(ValueError, match="strictly between"):
        interval.calibrate(np.ones(5), np.zeros(5), level=1.0)


def test_coverage_on_exchangeable_draws_is_close_to_the_level():
    rng = np.random.default_rng(2)
    log_pred = rng.normal(3.0, 0.8, 6000)
    noise = rng.standard_t(5, 6000) * 0.2 + 0.03  # heavy-tailed and slightly biased
    y = np.exp(log_pred + noise)
    block = interval.calibrate(y[:2000], log_pred[:2000], level=0.8)
    result = interval.assess(block, y[2000:], log_pred[2000:])
    assert result["level"] == 0.8 and result["n"] == 4000
    for key, figures in result["levels"].items():
        assert abs(figures["coverage"] - float(key)) < 0.02, (key, figures)
        assert abs(figures["below"] - figures["above"]) < 0.02  # equal tails
    q_low, q_high = block["quantiles"]["0.8"]
    assert result["median_relative_width"] == pytest.approx(math.exp(q_high) - math.exp(q_low))
    assert result["coverage"] == result["levels"]["0.8"]["coverage"]
    assert interval.coverage_ok(result["coverage"], 0.8)
    assert not interval.coverage_ok(0.7, 0.8) and not interval.coverage_ok(float("nan"), 0.8)


def test_the_finite_sample_guarantee_holds_on_average_with_small_calibration_sets():
    rng = np.random.default_rng(3)
    hits = []
    for _ in range(400):  # n = 30 calibration rows, one new row each time
        r = rng.normal(0, 0.3, 31)
        q_low, q_high, exact = interval.conformal_quantiles(r[:30], 0.8)
        hits.append(q_low <= r[30] <= q_high)
        assert exact
    assert np.mean(hits) >= 0.8 - 0.04  # E[coverage] >= 0.8 (rank 3 and 28 of 30: 25/31 = 0.806)


def test_bounds_scale_with_the_price():
    block = {"level": 0.8, "quantiles": {"0.8": [-0.2, 0.1], "0.9": [-0.3, 0.2]}}
    low, high = interval.bounds(block, 100.0)
    assert float(low) == pytest.approx(100 * math.exp(-0.2)) and float(high) == pytest.approx(100 * math.exp(0.1))
    low, high = interval.bounds(block, np.array([10.0, 20.0]), level=0.9)
    assert low.tolist() == pytest.approx([10 * math.exp(-0.3), 20 * math.exp(-0.3)])
    assert interval.level_key(0.80) == "0.8" and interval.level_key(0.95) == "0.95"
