"""What a modality adds to a single other one: the paired interval between a one- and a two-branch ablation."""

from __future__ import annotations

import numpy as np

from training.evaluation.checks import checks
from training.evaluation.scoring import attach_additions
from training.evaluation.summary import format_checks


def _evaluation() -> dict:
    def entry(kind: str, mods: list[str], rmsle: float) -> dict:
        return {"kind": kind, "modalities": mods, "test": {"rmsle": rmsle}}

    return {
        "full": entry("model", ["metadata", "text", "image"], 0.10),
        "metadata-only": entry("ablation", ["metadata"], 0.30),
        "text-only": entry("ablation", ["text"], 0.20),
        "no-text": entry("ablation", ["metadata", "image"], 0.25),
    }


def test_the_photo_adds_to_the_metadata_when_the_two_branch_model_is_closer_to_the_truth():
    rng = np.random.default_rng(0)
    y = rng.uniform(10, 500, 800)
    log_y = np.log(y)
    preds = {
        "full": log_y + rng.normal(0, 0.05, y.size),
        "metadata-only": log_y + rng.normal(0, 0.30, y.size),
        "text-only": log_y + rng.normal(0, 0.20, y.size),
        "no-text": log_y + rng.normal(0, 0.20, y.size),
    }
    evaluation = _evaluation()
    attach_additions(evaluation, preds, y)
    gain = evaluation["no-text"]["adds_to"]["metadata-only"]
    assert gain["modality"] == "image"
    assert gain["ci95"][0] > 0 and gain["ci95"][0] <= gain["rmsle_delta"] <= gain["ci95"][1]
    assert "adds_to" not in evaluation["metadata-only"] and "text-only" not in evaluation["no-text"]["adds_to"]
    [row] = checks(evaluation)["modality_adds"]
    assert (row["modality"], row["to"], row["with"]) == ("image", "metadata-only", "no-text")
    lines = [line for line, ok in format_checks(checks(evaluation)) if line.startswith("the image")]
    assert lines == [line for line, ok in format_checks(checks(evaluation)) if ok and line.startswith("the image")]
    assert lines[0].startswith("the image adds to the metadata alone: test RMSLE +0.")


def test_no_clear_difference_when_the_interval_straddles_zero():
    rng = np.random.default_rng(1)
    y = rng.uniform(10, 500, 300)
    noise = rng.normal(0, 0.2, y.size)
    preds = {
        "full": np.log(y),
        "metadata-only": np.log(y) + noise,
        "text-only": np.log(y) + noise,
        "no-text": np.log(y) + noise[::-1],
    }
    evaluation = _evaluation()
    attach_additions(evaluation, preds, y)
    [(line, ok)] = [(line, ok) for line, ok in format_checks(checks(evaluation)) if line.startswith("the image")]
    assert "makes no clear difference to the metadata alone" in line and not ok
