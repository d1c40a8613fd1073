"""Late fusion: the weights of the averaged single-modality models, its checks and its verdict line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from training.evaluation.checks import checks
from training.evaluation.fusion import combine, fit_weights, late_fusion, single_models
from training.evaluation.summary import format_checks


def _models(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Log prices and three noisy, correlated predictions of them."""
    rng = np.random.default_rng(seed)
    log_y = rng.normal(4.0, 0.8, n)
    shared = rng.normal(0, 0.1, n)
    preds = np.column_stack([log_y + shared + rng.normal(0, s, n) for s in (0.3, 0.2, 0.5)])
    return preds, log_y


def test_weights_are_non_negative_and_sum_to_one():
    for seed in range(5):
        preds, log_y = _models(seed)
        w = fit_weights(preds, log_y)
        assert w.shape == (3,)
        assert np.all(w >= 0)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_recovers_a_known_mix():
    rng = np.random.default_rng(3)
    preds = rng.normal(4.0, 1.0, (500, 3))
    mix = np.array([0.5, 0.3, 0.2])
    w = fit_weights(preds, preds @ mix)
    np.testing.assert_allclose(w, mix, atol=1e-4)
    # a little noise on the target moves the weights only a little
    w_noisy = fit_weights(preds, preds @ mix + rng.normal(0, 0.01, 500))
    np.testing.assert_allclose(w_noisy, mix, atol=0.01)


def test_a_model_that_is_right_gets_all_the_weight():
    rng = np.random.default_rng(4)
    log_y = rng.normal(4.0, 0.8, 1000)
    preds = np.column_stack([log_y + rng.normal(0, 0.5, 1000), log_y, log_y + 0.3 + rng.normal(0, 0.2, 1000)])
    w = fit_weights(preds, log_y)
    assert w[1] == pytest.approx(1.0, abs=1e-6)
    assert w[0] == pytest.approx(0.0, abs=1e-6) and w[2] == pytest.approx(0.0, abs=1e-6)


def test_a_model_that_only_hurts_gets_no_weight_not_a_negative_one():
    """Least squares alone would give the biased model a negative weight; the simplex does not."""
    rng = np.random.default_rng(5)
    log_y = rng.normal(4.0, 0.8, 1000)
    good = log_y + rng.normal(0, 0.1, 1000)
    preds = np.column_stack([good, good + 2.0, log_y + rng.normal(0, 0.15, 1000)])
    w = fit_weights(preds, log_y)
    assert np.all(w >= 0) and w[1] == pytest.approx(0.0, abs=1e-6)
    assert w[0] > w[2] > 0.1  # the two good, independent models share the weight


def test_the_fit_is_deterministic_and_beats_every_member_and_equal_weights():
    preds, log_y = _models(6)
    w = fit_weights(preds, log_y)
    assert np.array_equal(w, fit_weights(preds.copy(), log_y.copy()))

    def mse(v: np.ndarray) -> float:
        return float(np.mean((preds @ v - log_y) ** 2))

    for other in [np.full(3, 1 / 3), *np.eye(3)]:
        assert mse(w) <= mse(other) + 1e-12


def test_two_models_and_bad_input():
    preds, log_y = _models(7)
    w = fit_weights(preds[:, :2], log_y)
    assert w.shape == (2,) and w.sum() == pytest.approx(1.0)
    assert fit_weights(preds[:, :1], log_y).tolist() == [1.0]
    with pytest.raises(ValueError):
        fit_weights(preds, log_y[:-1])
    bad = preds.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        fit_weights(bad, log_y)


def test_combine_is_the_weighted_average_of_log_prices():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 6.0])
    np.testing.assert_allclose(combine({"a": a, "b": b, "c": b}, {"a": 0.25, "b": 0.75}), [2.5, 5.0])


def _evaluation(*names: str, kind: str = "ablation") -> dict:
    out = {"full": {"kind": "model", "modalities": ["metadata", "text", "image"]}}
    for name in names:
        out[name] = {"kind": kind, "modalities": [name.split("-")[0]] if name.endswith("-only") else ["x", "y"]}
    return out


def _cfg(ablations: str) -> SimpleNamespace:
    return SimpleNamespace(train=SimpleNamespace(ablations=ablations))


def test_only_the_single_modality_ablations_are_fused_and_only_when_asked_for():
    singles = ("metadata-only", "text-only", "image-only")
    evaluation = _evaluation(*singles, "no-image")
    assert single_models(_cfg("all"), evaluation) == list(singles)
    assert single_models(_cfg("single"), evaluation) == list(singles)
    assert single_models(_cfg("leave-one-out"), evaluation) == []
    assert single_models(_cfg("none"), _evaluation()) == []
    assert single_models(_cfg("single"), _evaluation("text-only")) == []  # one model: nothing to average


def test_late_fusion_entry_fits_on_valid_and_scores_on_test():
    rng = np.random.default_rng(8)
    log_valid, log_test = rng.normal(4.0, 0.8, 400), rng.normal(4.0, 0.8, 300)
    names = ("metadata-only", "text-only")
    valid = {k: log_valid + rng.normal(0, s, 400) for k, s in zip(names, (0.4, 0.2), strict=True)}
    test = {k: log_test + rng.normal(0, s, 300) for k, s in zip(names, (0.4, 0.2), strict=True)}
    entry, pred = late_fusion(_cfg("single"), _evaluation(*names), valid, test, np.exp(log_valid), np.exp(log_test))
    assert entry["kind"] == "late-fusion" and list(entry["weights"]) == list(names)
    assert sum(entry["weights"].values()) == pytest.approx(1.0)
    assert entry["weights"]["text-only"] > entry["weights"]["metadata-only"]
    np.testing.assert_allclose(pred, combine(test, entry["weights"]))
    assert entry["test"]["n"] == 300 and entry["valid"]["n"] == 400
    assert (
        late_fusion(_cfg("leave-one-out"), _evaluation(*names), valid, test, np.exp(log_valid), np.exp(log_test))
        is None
    )


def _scored(fusion_rmsle: float, ci: list[float] | None) -> dict:
    evaluation = {
        "full": {"kind": "model", "test": {"rmsle": 0.2}},
        "late-fusion": {
            "kind": "late-fusion",
            "test": {"rmsle": fusion_rmsle},
            "weights": {"metadata-only": 0.2, "text-only": 0.5, "image-only": 0.3},
        },
    }
    if ci:
        evaluation["late-fusion"]["vs_full"] = {"rmsle_delta": fusion_rmsle - 0.2, "ci95": ci}
    return checks(evaluation)


def test_the_joint_model_beats_the_average_only_when_the_interval_clears_zero():
    c = _scored(0.23, [0.01, 0.05])
    assert c["beats_late_fusion"] is True and c["late_fusion_rmsle"] == 0.23
    assert c["late_fusion_margin"] == pytest.approx(0.03) and c["late_fusion_margin_ci95"] == [0.01, 0.05]
    lines = dict(format_checks(c))
    line = (
        "the joint model beats three separate models averaged: test RMSLE 0.2000 vs 0.2300 (weights metadata "
        "0.20, text 0.50, image 0.30); their gap to the joint model +0.0300 (95% CI +0.0100 to +0.0500)"
    )
    assert lines == {line: True}
    unclear = format_checks(_scored(0.201, [-0.002, 0.004]))
    assert len(unclear) == 1 and unclear[0][1] is False
    assert unclear[0][0].startswith("the joint model does not beat three separate models averaged: ")
    assert unclear[0][0].endswith("(95% CI -0.0020 to +0.0040); no clear difference")
    worse = format_checks(_scored(0.19, [-0.02, -0.001]))
    assert worse[0][0].startswith("the joint model does NOT beat") and worse[0][0].endswith("the average is better")
    assert _scored(0.21, None)["beats_late_fusion"] is True  # no interval: the gap itself
    assert "late_fusion_rmsle" not in checks({"full": {"kind": "model", "test": {"rmsle": 0.2}}})


def test_an_ablation_saved_without_valid_predictions_is_trained_again():
    """`--resume` reuses a finished ablation only if its result.json has the valid predictions too."""
    from training.evaluation.ablations import _reusable

    saved = {"modalities": ["text"], "entry": {"kind": "ablation"}, "test_log_pred": [1.0, 2.0]}
    assert _reusable(saved, ("text",), n_test=2, n_valid=3) is None  # written before late fusion
    saved["valid_log_pred"] = [1.0, 2.0, 3.0]
    assert _reusable(saved, ("text",), n_test=2, n_valid=3) is saved
    assert _reusable(saved, ("image",), n_test=2, n_valid=3) is None
    assert _reusable(saved, ("text",), n_test=2, n_valid=4) is None
