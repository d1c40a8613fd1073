"""The benchmark's pretrained-encoder part: where its model comes from (reuse or train), the
figures and targets per encoder, and one real quick run of that part and the feature pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import server_memory
from bench.encoders import evaluate_encoders, markdown
from bench.pretrained import RECIPE_FILE, default_folder, plan, recipe, training_sets
from bench.run import QUICK
from harness.models import ROOT, SYNTHETIC_CONFIG
from harness.server import child_env


def _version(folder: Path, number: int = 1) -> None:
    (folder / str(number)).mkdir(parents=True)
    (folder / str(number) / "saved_model.pb").write_bytes(b"pb")


def test_the_model_is_trained_once_and_reused_with_the_same_recipe(tmp_path: Path):
    rec = recipe(QUICK)
    assert rec["encoder"] == "efficientnet_lite0" and rec["image_size"] == 64
    assert default_folder(rec) == ROOT / "models/bench-pretrained/efficientnet_lite0-64px"
    folder = tmp_path / "pre"
    assert plan(folder, rec, given=True)[0] == "train"  # nothing there yet
    _version(folder)
    assert plan(folder, rec, given=True)[0] == "use"  # someone's model, given by the option
    assert plan(folder, rec, given=False)[0] == "train"  # the bench's folder, but no recipe: not its own
    (folder / RECIPE_FILE).write_text(json.dumps(rec))
    assert plan(folder, rec, given=False) == ("use", "trained by an earlier bench run with the same recipe")
    assert plan(folder, {**rec, "image_size": 224}, given=True)[0] == "train"  # made with another recipe


def test_the_training_overrides_are_a_valid_config(tmp_path: Path):
    from training.config import load

    cfg = load(SYNTHETIC_CONFIG, training_sets(tmp_path / "m" / "lite", tmp_path / "items.csv", recipe(QUICK)))
    assert (cfg.model.image_encoder, cfg.model.image_size, cfg.model.image_trainable_blocks) == (
        "efficientnet_lite0",
        64,
        0,
    )
    assert (cfg.train.ablations, cfg.train.baselines, cfg.train.epochs, cfg.name) == ("none", False, 1, "lite")


def test_server_memory_reads_the_kernels_peak():
    memory = server_memory(os.getpid())
    assert memory["peak_rss_mib"] >= memory["rss_mib"] > 0


def _side(rps32: float, p50_1: float) -> tuple[dict, dict]:
    bound = {"batch1_latency_ms": {"p50": 10.0, "p99": 12.0}, "batch32_items_per_s": 100.0}
    lat = {"p50": p50_1, "p90": p50_1, "p99": p50_1 * 2}
    levels = {
        "1": {"throughput_rps": 50.0, "latency_ms": lat},
        "32": {"throughput_rps": rps32, "latency_ms": lat, "server_cpu_ms_per_prediction": 3.0},
    }
    return bound, {"levels": levels, "memory": {"peak_rss_mib": 900.0}, "memory_ready": {"rss_mib": 800.0}}


def test_targets_per_encoder_met_missed_and_not_measured():
    bound, service = _side(rps32=85.0, p50_1=12.0)  # 0.85x; +2 ms
    pre_bound, pre_service = _side(rps32=70.0, p50_1=14.0)  # 0.7x; +4 ms
    results = {
        "model": {"dir": "models/price", "version": "3", "encoder": "scratch", "image_size": 48},
        "bound": bound,
        "servers": {"batched": service},
        "pretrained": {
            "model": {"dir": "p", "version": "1", "how": "used", "why": "given", "encoder": "lite", "image_size": 224},
            "bound": pre_bound,
            "service": pre_service,
        },
        "features": {"error": "boom"},
    }
    verdicts = [(t["side"], t["name"][:3], t["verdict"]) for t in evaluate_encoders(results)]
    assert verdicts == [
        ("scratch", "(a)", "target met"),
        ("scratch", "(b)", "target met"),
        ("pretrained", "(a)", "target missed"),
        ("pretrained", "(b)", "target missed"),
    ]
    assert results["encoders"]["pretrained"]["server_peak_rss_mib"] == 900.0
    text = "\n".join(markdown(results))
    assert "| | scratch (48 px) | lite (224 px) |" in text
    assert "| in process, batch 32: items/s | 100 | 100 |" in text
    assert "**target missed**: 0.70x (70.0 req/s vs 100.0 items/s)" in text
    assert "not measured (boom)" in text  # the feature pass
    results["servers"], results["pretrained"] = {}, {"error": "RuntimeError: training exited with 1"}
    assert {t["verdict"] for t in evaluate_encoders(results)} == {"not measured"}  # scratch's (b) needs a server
    assert "- pretrained: failed: RuntimeError: training exited with 1" in markdown(results)


def test_the_one_client_target_takes_the_run_in_turns_over_separate_runs():
    """bench/paired.py's gap (service and bound in the same minutes) decides (b); the separate
    runs' gap is still shown beside it."""
    bound, service = _side(rps32=85.0, p50_1=16.0)  # separate runs: +6 ms
    service["paired"] = {
        "rounds": 4, "block": 10, "gap_p50_ms": 2.5,
        "service_ms": {"p50": 14.5}, "bound_ms": {"p50": 12.0},
    }  # fmt: skip
    results = {"model": {"dir": "m", "version": "1"}, "bound": bound, "servers": {"batched": service}}
    [_, b] = evaluate_encoders(results)
    assert (b["verdict"], b["value"]) == ("target met", 2.5)
    assert b["measured"] == (
        "+2.5 ms (14.5 vs 12.0 ms, in turns: 40 requests and 40 bound calls); separate runs: +6.0 ms (16.0 vs 10.0 ms)"
    )
    del service["paired"]
    [_, b] = evaluate_encoders(results)
    assert (b["verdict"], b["measured"]) == ("target missed", "+6.0 ms (16.0 vs 10.0 ms, separate runs)")


@pytest.mark.slow  # trains a model and starts a server
def test_quick_run_of_the_pretrained_part_and_the_feature_pass(tmp_path: Path):
    """`--quick` trains a tiny pretrained model (64 px) into the given folder, measures it in process
    and served, and times the feature pass; no scratch model is needed for these parts."""
    args = [sys.executable, "-m", "bench", "--quick", "--only", "pretrained,features",
            "--model-dir", str(tmp_path / "none"), "--pretrained-model-dir", str(tmp_path / "pre"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    subprocess.run(args, check=True, cwd=ROOT, env=child_env(), timeout=900)
    r = json.loads((tmp_path / "out/latest.json").read_text())
    pre = r["pretrained"]
    assert pre["model"]["how"] == "trained" and pre["model"]["image_size"] == 64
    assert plan(tmp_path / "pre", recipe(QUICK), given=True)[0] == "use"  # the next run reuses it
    assert pre["bound"]["batch32_items_per_s"] > 0
    assert {k: v["errors"] for k, v in pre["service"]["levels"].items()} == {"1": 0, "32": 0}
    assert pre["service"]["memory"]["peak_rss_mib"] > 0
    paired = pre["service"]["paired"]  # one client in turns with the bound
    assert paired["rounds"] == QUICK.paired_rounds and len(paired["round_gaps_ms"]) == QUICK.paired_rounds
    assert paired["service_ms"]["p50"] > 0 and paired["bound_ms"]["p50"] > 0
    assert r["features"]["photos_per_second"] > 0 and r["features"]["image_size"] == 224
    assert [t["verdict"] in ("target met", "target missed") for t in r["encoder_targets"]] == [True, True]
    text = (tmp_path / "out/latest.md").read_text()
    assert "## Scratch vs pretrained photo encoder" in text and "efficientnet_lite0 (64 px)" in text
