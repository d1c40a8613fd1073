"""price_metrics: the figures every model is compared by, checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluation.metrics import price_metrics


def test_rmsle_is_scikit_learns():
    from sklearn.metrics import root_mean_squared_log_error

    rng = np.random.default_rng(0)
    y, p = rng.uniform(5, 500, 200), rng.uniform(5, 500, 200)
    assert price_metrics(y, p)["rmsle"] == pytest.approx(root_mean_squared_log_error(y, p), rel=1e-12)


def test_metrics_match_hand_computed_values():
    # log ratios 0, log 1.25, log 0.5; absolute errors 0, 5, 20; relative errors 0, 0.25, 0.5
    m = price_metrics(np.array([10.0, 20.0, 40.0]), np.array([10.0, 25.0, 20.0]))
    assert m["log_rmse"] == pytest.approx(math.sqrt((math.log(1.25) ** 2 + math.log(0.5) ** 2) / 3))
    assert m["log_rmse"] == pytest.approx(0.420415, abs=1e-6)
    # RMSLE as scikit-learn defines it: log1p ratios 0, log(26/21), log(21/41)
    assert m["rmsle"] == pytest.approx(math.sqrt((math.log(26 / 21) ** 2 + math.log(21 / 41) ** 2) / 3))
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
    assert m == {
        "rmsle": 0.0,
        "log_rmse": 0.0,
        "mae": 0.0,
        "mape": 0.0,
        "medape": 0.0,
        "r2": 1.0,
        "within_20pct": 1.0,
        "n": 4,
    }


def test_log_rmse_is_symmetric_in_ratio_and_mape_is_not():
    y = np.array([100.0, 100.0])
    over, under = price_metrics(y, np.array([200.0, 200.0])), price_metrics(y, np.array([50.0, 50.0]))
    assert over["log_rmse"] == pytest.approx(math.log(2)) and under["log_rmse"] == pytest.approx(math.log(2))
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
    assert m["log_rmse"] > 20  # log(1e-9) is far from any price
    assert m["rmsle"] == pytest.approx(math.sqrt((math.log(11) ** 2 + math.log(21) ** 2) / 2), rel=1e-6)
    assert m["within_20pct"] == 0.0


def test_a_branch_helps_only_when_its_interval_clears_zero():
    """The verdict follows the paired bootstrap interval, not the point difference alone."""
    from training.evaluation.summary import format_checks

    lines = dict(
        (text.split(":")[0], ok)
        for text, ok in format_checks(
            {
                "full_rmsle": 0.177,
                "rmsle_increase_without": {"image": 0.0004, "text": 0.0673, "metadata": -0.01},
                "rmsle_increase_without_ci95": {
                    "image": [-0.0009, 0.0015],
                    "text": [0.05, 0.08],
                    "metadata": [-0.02, -0.001],
                },
            }
        )
    )
    assert lines == {
        "the image branch makes no clear difference": False,
        "the text branch helps": True,
        "the metadata branch HURTS": False,
    }


def test_bootstrap_sees_a_real_gap_and_not_a_tiny_one():
    """Paired resampling: a model 10% worse on every row is clearly worse; one that differs by noise
    far below what 300 rows can resolve gets an interval around zero."""
    from training.evaluation.metrics import bootstrap_rmsle

    rng = np.random.default_rng(1)
    y = rng.normal(7.0, 0.8, 300)
    err = rng.normal(0, 0.2, 300)
    preds = {"full": y + err, "worse": y + 1.1 * err, "same": y + err + rng.normal(0, 1e-3, 300)}
    b = bootstrap_rmsle(y, preds, reference="full", n_boot=500)
    full = float(np.sqrt(np.mean(err**2)))
    assert b["full"]["rmsle_ci"][0] < full < b["full"]["rmsle_ci"][1]
    assert "delta" not in b["full"]
    assert b["worse"]["delta"] == pytest.approx(0.1 * full, rel=1e-6)
    assert 0 < b["worse"]["delta_ci"][0] < b["worse"]["delta"] < b["worse"]["delta_ci"][1]
    lo, hi = b["same"]["delta_ci"]
    assert lo < 0 < hi and hi - lo < 1e-3
    # the same seed gives the same intervals; too few rows give none
    assert bootstrap_rmsle(y, preds, reference="full", n_boot=500) == b
    assert bootstrap_rmsle(y[:1], {"full": y[:1]}, reference="full") == {}


def test_the_comparables_lines_say_when_a_check_fails():
    """The printed summary flags a missed comparables check in its words, as OUTSIDE and NOT do
    elsewhere: "MORE than 1.25", "FEWER than 80%"."""
    from training.evaluation.checks import checks
    from training.evaluation.summary import format_checks

    def lines(knn_rmsle: float, share: float) -> dict[str, bool]:
        evaluation = {
            "full": {"kind": "model", "test": {"rmsle": 0.2}},
            "comparables": {
                "kind": "knn",
                "k": 5,
                "test": {"rmsle": knn_rmsle},
                "relevance": {"share_same": share, "column": "category"},
            },
        }
        return dict(format_checks(checks(evaluation)))

    good = lines(0.24, 0.9)
    assert good == {
        "the 5 comparables' weighted median price scores 0.2400 test RMSLE, 1.200 x the full model's (at most 1.25)": True,
        "90% of the top 5 comparables share the test listing's category (at least 80%)": True,
    }
    bad = lines(0.26, 0.7)
    assert bad == {
        "the 5 comparables' weighted median price scores 0.2600 test RMSLE, 1.300 x the full model's (MORE than 1.25)": False,
        "70% of the top 5 comparables share the test listing's category (FEWER than 80%)": False,
    }
