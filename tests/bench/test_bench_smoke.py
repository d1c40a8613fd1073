"""Smoke test of the benchmark's machinery (no timings asserted): the load generator against a
stand-in server in its own process, percentiles, targets, the Markdown report and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import percentiles, run_json
from bench.report import evaluate_targets, write_markdown, write_plot
from harness.server import ServiceProcess


def test_percentiles_nearest_rank_in_ms():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    p = percentiles(values)
    assert (p["p50"], p["p90"], p["p99"], p["max"]) == pytest.approx((50.0, 90.0, 99.0, 100.0))
    assert p["mean"] == pytest.approx(50.5)


def test_load_generator_against_a_server_in_its_own_process(stub_server: ServiceProcess, tmp_path: Path):
    payloads = tmp_path / "payloads.json"
    payloads.write_text(
        json.dumps(
            {
                "card": {"inputs": [{"name": "brand", "role": "categorical"}]},
                "bodies": [{"brand": "zara"}, {"brand": "h&m"}],
            }
        )
    )
    args = ["-m", "bench.load", "--url", stub_server.url, "--payloads", str(payloads), "--concurrency", "4",
            "--duration", "0.5", "--warmup", "0.2", "--min-samples", "5", "--server-pid", str(stub_server.pid)]  # fmt: skip
    result = run_json(args, timeout=120)
    assert result["concurrency"] == 4
    assert result["ok"] >= 5 and result["errors"] == 0
    assert result["statuses"] == {"200": result["ok"]}
    assert result["throughput_rps"] > 0
    assert set(result["latency_ms"]) == {"p50", "p90", "p99", "mean", "max"}
    assert result["server_cpu_ms_per_prediction"] >= 0


def _level(rps: float, p99: float, cpu: float = 1.0) -> dict:
    lat = {"p50": p99 / 2, "p90": p99 * 0.9, "p99": p99, "mean": p99 / 2, "max": p99}
    return {"throughput_rps": rps, "latency_ms": lat, "server_cpu_ms_per_prediction": cpu, "requests": 10, "errors": 0}


def test_report_targets_markdown_and_plot(tmp_path: Path):
    results = {
        "mode": "quick",
        "started": "2026-01-01T00:00:00Z",
        "seconds": 60.0,
        "machine": {
            "cores": 2,
            "cpu": "cpu",
            "memory_gib": 1,
            "platform": "linux",
            "python": "3.11",
            "commit": "abc",
            "load_average_start": [0.5, 0, 0],
            "load_average_end": [0.5, 0, 0],
        },
        "model": {"dir": "models/price", "version": "1"},
        "pipeline": {
            "examples": 10,
            "batch_size": 2,
            "image_size": 8,
            "files_examples_per_s": 95.0,
            "memory_examples_per_s": 100.0,
            "cached_first_epoch_examples_per_s": 90.0,
            "cached_examples_per_s": 99.0,
            "pipeline_only_examples_per_s": 500.0,
            "ratio_files_memory": 0.95,
            "ratio_cached_memory": 0.99,
        },
        "memory": {
            "settings": ["train.epochs=1"],
            "ratio_4n_n": 1.5,
            "runs": [
                {"rows": 1, "peak_rss_mib": 100.0, "seconds": 1, "cpu_s": 1},
                {"rows": 4, "peak_rss_mib": 150.0, "seconds": 1, "cpu_s": 1},
            ],
        },
        "bound": {
            "batch1_latency_ms": {"p50": 5.0, "p90": 6.0, "p99": 7.0, "mean": 5.0, "max": 8.0},
            "batch1_calls": 10,
            "batch1_cpu_ms_per_item": 5.0,
            "batch32_items_per_s": 1000.0,
            "batches": {
                "32": {
                    "items_per_s": 1000.0,
                    "call_ms": {"p50": 30.0, "p90": 31.0, "p99": 32.0},
                    "cpu_ms_per_item": 1.0,
                }
            },
        },
        "servers": {
            "batched": {"label": "on", "levels": {"1": _level(100, 20), "32": _level(400, 100)}},
            "unbatched": {"label": "off", "levels": {"1": _level(150, 8), "32": _level(200, 300)}},
            "naive": {"label": "naive", "levels": {"1": _level(5, 300), "32": _level(5, 9000)}},
        },
    }
    targets = {t["name"]: t["pass"] for t in evaluate_targets(results)}
    name = "input pipeline: files / memory >= 0.9 (as `make train` reads them: photos decoded once into a cache file, epochs 2+)"
    assert targets[name] is True
    assert targets["peak training RSS: 4N / N <= 1.3"] is False
    assert targets["32 clients: batched service / naive service throughput >= 3"] is True
    assert targets["32 clients: batching on / off throughput >= 1.5"] is True
    assert targets["32 clients: batched p99 lower than batching off and naive"] is True
    assert targets["1 client: service p50 - bound batch-1 p50 <= 3 ms"] is False  # p50 10 ms vs 5 ms
    results["targets"] = evaluate_targets(results)
    write_markdown(results, tmp_path / "latest.md")
    text = (tmp_path / "latest.md").read_text()
    assert "| peak training RSS: 4N / N <= 1.3 | 1.50 (150 vs 100 MiB) | **FAIL** |" in text
    assert "| on | 32 | 400.0 |" in text
    assert write_plot(results, tmp_path / "plot.png") == tmp_path / "plot.png"
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_parts_are_not_measured_rather_than_failed():
    results = {"servers": {}, "pipeline": {"error": "boom"}}
    assert {t["pass"] for t in evaluate_targets(results)} == {None}
