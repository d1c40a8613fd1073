"""End to end: a tiny run with single-modality ablations, their late fusion and baselines writes a
complete report, and `evaluate_exported` scores the exported model again through its serving signature."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.tiny import tiny_config, train_in
from training.evaluation.ablations import plan_ablations
from training.evaluation.summary import print_summary
from training.pipeline import evaluate_exported

SINGLES = {"metadata-only", "text-only", "image-only"}
MODELS = {"full", *SINGLES, "late-fusion", "comparables", "baseline-mean", "baseline-ridge", "baseline-hgb"}
METRICS = {"rmsle", "log_rmse", "mae", "mape", "medape", "r2", "within_20pct", "n"}


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory):
    """Train the tiny model with ablations "single" and the baselines, export it."""
    work = tmp_path_factory.mktemp("evaluate")
    cfg = tiny_config(tiny_dataset, work / "models", ablations="single")
    cfg.train.baselines = True
    result = train_in(work, cfg)
    version = Path(result["path"])
    return {
        "cfg": cfg,
        "result": result,
        "version": version,
        "work": work,
        "doc": json.loads((version / "evaluation.json").read_text()),
        "html": (version / "report.html").read_text(),
    }


def _finite(m: dict) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in m.values())


def test_evaluation_json_scores_every_model_on_the_same_test_rows(run):
    doc = run["doc"]
    models = doc["models"]
    assert set(models) == MODELS
    n_test = doc["dataset"]["splits"]["test"]
    assert n_test > 0
    for name, entry in models.items():
        assert set(entry["test"]) == METRICS, name
        assert _finite(entry["test"]), (name, entry["test"])
        assert entry["test"]["n"] == n_test, name
        assert entry["test"]["rmsle"] > 0 and 0 <= entry["test"]["within_20pct"] <= 1
    assert {models[k]["kind"] for k in models} == {"model", "ablation", "late-fusion", "knn", "baseline"}
    assert models["image-only"]["modalities"] == ["image"]
    assert models["full"]["modalities"] == ["metadata", "text", "image"]
    # the full model's figures are the ones the pipeline put on the model card
    card = json.loads((run["version"] / "model_card.json").read_text())
    assert card["metrics"]["test"]["rmsle"] == pytest.approx(models["full"]["test"]["rmsle"])
    assert card["report"] == "report.html" and card["evaluation"] == "evaluation.json"


def test_baselines_record_a_validation_choice(run):
    models = run["doc"]["models"]
    ridge = models["baseline-ridge"]
    chosen = min(ridge["grid"], key=lambda g: g["valid_log_rmse"])
    assert ridge["params"]["alpha"] == chosen["alpha"]
    assert ridge["valid"]["log_rmse"] == pytest.approx(chosen["valid_log_rmse"], rel=1e-6)
    hgb = models["baseline-hgb"]
    assert hgb["params"]["rounds"] >= 1 and len(hgb["grid"]) >= 2
    # the mean baseline predicts one price for every listing: R2 on price can't be much above 0
    assert models["baseline-mean"]["test"]["r2"] <= 0.05


def test_histories_and_checks_are_recorded(run):
    doc = run["doc"]
    for name in ("full", "metadata-only", "text-only", "image-only"):
        h = doc["models"][name]["history"]
        assert len(h["loss"]) == len(h["log_rmse"]) == len(h["val_log_rmse"]) == run["cfg"].train.epochs
        assert all(math.isfinite(v) for v in h["val_log_rmse"])
    checks = doc["checks"]
    assert checks["best_baseline"] in MODELS and checks["best_single"].endswith("-only")
    full = doc["models"]["full"]["test"]["rmsle"]
    assert checks["full_over_best_single"] == pytest.approx(full / checks["best_single_rmsle"])
    # every figure carries its paired bootstrap interval over the same test rows
    for name, entry in doc["models"].items():
        lo, hi = entry["test_rmsle_ci95"]
        assert lo <= entry["test"]["rmsle"] <= hi, name
        if name != "full":
            gap = entry["vs_full"]
            assert gap["rmsle_delta"] == pytest.approx(entry["test"]["rmsle"] - full, abs=1e-9)
            assert gap["ci95"][0] <= gap["ci95"][1]
    assert checks["best_baseline_margin_ci95"] == doc["models"][checks["best_baseline"]]["vs_full"]["ci95"]
    cat = doc["by_category"]
    assert cat["column"] == "category" and 0 < cat["shown"] <= 12  # the synthetic config's report_category
    assert sum(r["n"] for r in cat["rows"]) <= doc["dataset"]["splits"]["test"]
    assert all(math.isfinite(r["full"]) for r in cat["rows"])
    assert doc["dataset"]["sha256"] and doc["config"]["train"]["ablations"] == "single"


def test_report_html_is_self_contained_with_every_plot(run):
    html = run["html"]
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    # bars, predicted vs true, residuals, comparables, any subset, by category, learning curves
    assert len(images) == 7 and "Any subset of the inputs" in html
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "nothing to plot" not in html
    assert not re.search(r"(src|href)=['\"](?!data:)", html)  # nothing fetched from elsewhere
    for name in MODELS:
        assert f">{name}<" in html
    assert run["doc"]["dataset"]["sha256"] in html
    assert "Learning curves" in html and "Error by category" in html
    gap = run["doc"]["models"]["baseline-mean"]["vs_full"]
    assert f"{gap['rmsle_delta']:+.4f}<br><span class='muted'>{gap['ci95'][0]:+.4f} to {gap['ci95'][1]:+.4f}" in html


def test_training_summary_prints_every_model(run, capsys):
    print_summary(run["result"])
    out = capsys.readouterr().out
    assert str(run["version"]) in out and "report.html" in out
    rows = {line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in MODELS}
    assert rows == MODELS
    assert "best single modality" in out and "baseline" in out
    assert "late-fusion" in out and "the joint model " in out and " three separate models averaged: " in out


def test_comparables_are_scored_as_a_predictor_with_their_relevance(run, capsys):
    doc = run["doc"]
    entry, checks = doc["models"]["comparables"], doc["checks"]
    splits = doc["dataset"]["splits"]
    assert entry["k"] == 5 and entry["search"] == "exact" and entry["stored"] == splits["train"] + splits["valid"]
    assert entry["dimensions"] == ["brand", "category", "condition", "size", "colour", "title", "description", "deep"]
    rel = entry["relevance"]
    assert rel["column"] == "category" and 0 < rel["share_same"] <= 1 and 0 < rel["share_top1_same"] <= 1
    assert checks["comparables_relevance"] == rel["share_same"]
    assert checks["comparables_over_full"] == pytest.approx(
        entry["test"]["rmsle"] / doc["models"]["full"]["test"]["rmsle"]
    )
    assert checks["comparables_close_to_full"] == (checks["comparables_over_full"] <= 1.25)
    # the predictions are the comparables' weighted medians: prices of stored listings
    preds = pd.read_csv(_predictions(run))
    card = json.loads((run["version"] / "model_card.json").read_text())
    stored_prices = set(np.round(np.load(run["version"] / "comparables" / "prices.npy"), 4))
    assert set(np.round(preds["comparables"].to_numpy(), 4)) <= stored_prices
    assert card["comparables"]["count"] == entry["stored"]
    ex = entry["examples"][0]
    assert len(ex["comparables"]) == 5 and {"id", "price", "category", "similarity"} <= set(ex["comparables"][0])
    html = run["html"]
    assert "Comparables (the evidence beside each price)" in html and f"{rel['share_same']:.0%} of the top 5" in html
    print_summary(run["result"])
    out = capsys.readouterr().out
    assert "the 5 comparables' weighted median price scores " in out
    verdict = "at least" if checks["comparables_relevant"] else "FEWER than"  # the line says which
    assert f"{rel['share_same']:.0%} of the top 5 comparables share the test listing's category ({verdict} 80%)" in out


def _predictions(run) -> Path:
    return run["work"] / run["doc"]["run"] / "test_predictions.csv"  # the run folder, relative to the work dir


def test_late_fusion_averages_the_single_models_with_weights_fitted_on_valid(run):
    doc = run["doc"]
    models, checks = doc["models"], doc["checks"]
    fused = models["late-fusion"]
    weights = fused["weights"]
    assert set(weights) == SINGLES and fused["members"] == list(weights)
    assert all(w >= 0 for w in weights.values()) and sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    # fitted on valid to least squared error of log price: no worse there than any one of them alone
    assert fused["valid"]["log_rmse"] <= min(models[k]["valid"]["log_rmse"] for k in SINGLES) + 1e-9
    gap = fused["vs_full"]
    assert gap["rmsle_delta"] == pytest.approx(fused["test"]["rmsle"] - models["full"]["test"]["rmsle"], abs=1e-9)
    assert gap["ci95"][0] <= gap["ci95"][1]
    assert checks["late_fusion_rmsle"] == fused["test"]["rmsle"] and checks["late_fusion_weights"] == weights
    assert checks["late_fusion_margin_ci95"] == gap["ci95"]
    assert checks["beats_late_fusion"] == (gap["ci95"][0] > 0)
    # its test predictions are the weighted average of the single models' log prices
    run_dir = run["work"] / doc["run"]  # relative to the folder the run was started in
    preds = pd.read_csv(run_dir / "test_predictions.csv")
    mixed = sum(w * np.log(preds[k].to_numpy()) for k, w in weights.items())
    np.testing.assert_allclose(
        np.log(preds["late-fusion"].to_numpy()), mixed, atol=1e-6
    )  # the csv holds float32 prices
    # every ablation saved its valid predictions for `--resume`
    n_valid = doc["dataset"]["splits"]["valid"]
    for name in SINGLES:
        saved = json.loads((run_dir / f"ablation-{name}" / "result.json").read_text())
        assert len(saved["valid_log_pred"]) == n_valid
    html = run["html"]
    assert ">late-fusion<" in html and "separate models averaged: test RMSLE" in html
    assert "weights metadata-only" in html


def test_evaluate_exported_rescores_through_the_serving_signature(run, tmp_path):
    version = tmp_path / "1"
    shutil.copytree(run["version"], version)
    before = json.loads((version / "evaluation.json").read_text())
    result = evaluate_exported(version, run["cfg"])
    doc = json.loads((version / "evaluation.json").read_text())
    assert doc["source"] == "evaluate" and doc["model"]["version"] == 1
    assert set(doc["models"]) == {"full", "baseline-mean", "baseline-ridge", "baseline-hgb"}
    # same rows, same model: the SavedModel on raw bytes agrees with the in-memory model
    assert doc["models"]["full"]["test"]["rmsle"] == pytest.approx(before["models"]["full"]["test"]["rmsle"], abs=1e-4)
    for name in ("baseline-mean", "baseline-ridge", "baseline-hgb"):  # same split, same choice, same figures
        assert doc["models"][name]["test"]["rmsle"] == pytest.approx(before["models"][name]["test"]["rmsle"], rel=1e-6)
    assert doc["models"]["full"]["history"]["loss"]  # learning curves carried over from training
    assert json.loads((version / "evaluation-train.json").read_text()) == before
    assert (version / "report-train.html").exists()
    html = (version / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "scored again" in html
    card = json.loads((version / "model_card.json").read_text())
    assert card["report"] == "report.html"
    assert card["last_evaluation"]["test"]["rmsle"] == pytest.approx(result["metrics"]["rmsle"])
    assert not list(version.glob(".*tmp*"))


def test_ablation_plan_follows_the_config_and_skips_missing_modalities(run):
    cfg = run["cfg"]
    names = {}
    for mode in ("none", "single", "leave-one-out", "all"):
        cfg.train.ablations = mode
        names[mode] = [n for n, _ in plan_ablations(cfg)]
    cfg.train.ablations = "single"
    assert names["none"] == []
    assert names["single"] == ["metadata-only", "text-only", "image-only"]
    assert names["leave-one-out"] == ["no-metadata", "no-text", "no-image"]
    assert names["all"] == names["single"] + names["leave-one-out"]
    no_photo = tiny_config(cfg.table_path(), run["work"], ablations="all")
    no_photo.data.image = ""
    # with two modalities, leaving one out is the other one alone: trained once
    assert plan_ablations(no_photo) == [("metadata-only", ("metadata",)), ("text-only", ("text",))]


def test_the_first_text_column_alone_is_priced_with_and_without_the_photo(run):
    """The tiny config has a title and a description: the any-subset table also prices the title
    alone (description and metadata removed), without and with the photo, through the one model."""
    first = run["doc"]["any_subset"]["first_text_column"]
    assert first["column"] == "title"
    assert first["alone"]["n"] == first["with_photo"]["n"] == run["doc"]["dataset"]["splits"]["test"]
    alone, photo = first["alone"]["rmsle"], first["with_photo"]["rmsle"]
    assert math.isfinite(alone) and math.isfinite(photo) and alone > 0
    assert first["gain"] == pytest.approx(1 - photo / alone)
    # the thinner listing is priced worse than the complete one
    assert alone > run["doc"]["models"]["full"]["test"]["rmsle"]
    assert run["doc"]["checks"]["photo_gain_on_first_text_column"] == pytest.approx(first["gain"])
    # its range: strata of its own, calibrated on the valid rows with the description removed too
    calibration = run["doc"]["models"]["full"]["interval"]["calibration"]
    assert calibration["first_text"] == "title"
    for key in ("text", "metadata+text", "text+image", "metadata+text+image"):
        assert calibration["by_inputs"][key + "|first_text_only"]["n"] >= run["doc"]["dataset"]["splits"]["valid"]
    assert all(0 <= first[k]["range_coverage"] <= 1 for k in ("alone", "with_photo"))
    assert set(run["doc"]["checks"]["first_text_column_range"]) == {"alone", "with_photo"}
