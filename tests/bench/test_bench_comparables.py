"""The benchmark's comparables part (bench/comparables.py): recall@k, the synthetic embeddings,
the targets and the report's section from a made-up result, and a real run at tiny sizes through
the orchestrator's command line (seconds)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import comparables
from bench.comparables import clustered, exact_top_k, find_run, parse_size, recall_at_k
from bench.report import evaluate_targets, write_markdown
from bench.run import FULL, QUICK
from common.neighbours import EXACT_MAX, HNSW_EF_SEARCH, Neighbours


def test_recall_at_k_counts_the_true_neighbours_found_in_any_order():
    truth = np.array([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14], [5, 6, 7, 8, 9]])
    found = np.array(
        [
            [4, 3, 2, 1, 0],  # all five, reversed: 5/5
            [10, 11, 99, 98, -1],  # two, and faiss's -1 for a missing result: 2/5
            [9, 9, 9, 9, 9],  # one true neighbour, repeated: counted once, 1/5
        ]
    )
    assert recall_at_k(found, truth) == pytest.approx((5 + 2 + 1) / 15)
    assert recall_at_k(truth, truth) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(found[:, :3], truth)


def test_the_ground_truth_is_the_brute_force_top_k():
    stored, queries = clustered(3000, 16, centres=20, seed=3), clustered(70, 16, centres=20, seed=3, stream=1)
    truth, ms_per_query = exact_top_k(Neighbours.build(stored, "exact"), queries, 5)  # two batches of 64
    brute = np.argsort(-(queries @ stored.T), axis=1, kind="stable")[:, :5]
    assert truth.shape == (70, 5) and ms_per_query > 0
    assert (truth == brute).all()


def test_synthetic_embeddings_are_unit_clustered_and_reproducible():
    x = clustered(4000, 32, centres=10, spread=0.5, seed=1)
    assert x.shape == (4000, 32) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert (x == clustered(4000, 32, centres=10, spread=0.5, seed=1)).all()
    queries = clustered(50, 32, centres=10, spread=0.5, seed=1, stream=1)
    assert not np.isin(queries[:, 0], x[:, 0]).any()  # new draws, not stored rows
    # Clustered: a row's nearest other row is much closer than in iid noise of the same shape.
    iid = np.random.default_rng(0).standard_normal((4000, 32)).astype(np.float32)
    iid /= np.linalg.norm(iid, axis=1, keepdims=True)

    def nearest(v: np.ndarray) -> float:
        s = v[:200] @ v.T
        s[np.arange(200), np.arange(200)] = -1.0
        return float(s.max(axis=1).mean())

    assert nearest(x) > 0.8 and nearest(iid) < 0.7


def test_sizes_are_rows_or_rows_by_dim():
    assert parse_size("200000", 64) == (200_000, 64)
    assert parse_size("200_000x192", 64) == (200_000, 192)
    with pytest.raises(ValueError):
        parse_size("0", 64)


def test_the_profiles_measure_the_issues_sizes_and_quick_stays_tiny():
    assert {"20000", "200000", "2000000", "200000x192"} <= set(FULL.comparables_sizes)
    assert str(EXACT_MAX) in FULL.comparables_sizes  # the threshold itself is timed
    assert max(parse_size(s, 64)[0] for s in QUICK.comparables_sizes) <= 20_000
    assert QUICK.comparables_queries <= 100 and QUICK.comparables_latency_queries <= 50
    assert comparables.profile_args(QUICK)[:2] == ["--sizes", "2000,20000"]


def _search(p50: float, recall: float | None = None) -> dict:
    lat = {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 2, "mean": p50, "max": p50 * 3}
    out = {"latency_ms": lat, "cpu_ms_per_query": p50, "samples": 300}
    return out if recall is None else {**out, "recall_at_k": recall}


def _run(rows: int, dim: int, exact_p50: float, sweep: dict[int, tuple[float, float]]) -> dict:
    """One size: exact at ``exact_p50`` ms; HNSW {efSearch: (p50 ms, recall)}."""
    reaching = [ef for ef, (_, recall) in sweep.items() if recall >= 0.95]
    return {
        "rows": rows,
        "dim": dim,
        "chosen": "exact" if rows <= EXACT_MAX else "hnsw",
        "vectors_bytes": rows * dim * 4,
        "vectors_file_bytes": rows * dim * 2 + 128,
        "exact": {"build_s": 0.01, "batched_ms_per_query": 0.1, **_search(exact_p50)},
        "exact_all_threads": _search(exact_p50 * 1.5),
        "hnsw": {
            "build_s": 12.5,
            "index_file_bytes": rows * 600,
            "ef_search": {str(ef): _search(p50, recall) for ef, (p50, recall) in sweep.items()},
            "min_ef_search_for_recall": min(reaching) if reaching else None,
        },
    }


def _results(runs: list[dict]) -> dict:
    return {
        "mode": "full",
        "started": "2026-01-01T00:00:00Z",
        "seconds": 60.0,
        "machine": {"cores": 2, "cpu": "cpu", "memory_gib": 1, "platform": "linux", "python": "3.11",
                    "commit": "abc", "load_average_start": [0.5, 0, 0], "load_average_end": [0.5, 0, 0]},
        "model": {"dir": "models/price", "version": "1"},
        "comparables": {
            "k": 5, "dim": 64, "queries": 500, "latency_queries": 300,
            "data": {"centres": 1000, "spread": 0.75, "seed": 0}, "exact_max": EXACT_MAX,
            "hnsw": {"m": 32, "ef_construction": 200, "ef_search": HNSW_EF_SEARCH},
            "recall_min": 0.95, "faiss_threads": 2, "cores_available": 2, "seconds": 300.0,
            "runs": runs,
        },
    }  # fmt: skip


def test_targets_and_section_from_a_made_up_result(tmp_path: Path):
    ef = HNSW_EF_SEARCH
    results = _results(
        [
            _run(20_000, 64, 0.3, {32: (0.1, 1.0), ef: (0.2, 1.0)}),
            _run(EXACT_MAX, 64, 2.5, {32: (0.1, 1.0), ef: (0.2, 1.0)}),  # exact over 2 ms at the threshold
            _run(200_000, 64, 9.0, {32: (0.2, 0.99), ef: (0.4, 1.0)}),  # chosen: hnsw, 0.4 ms
            _run(2_000_000, 64, 90.0, {32: (0.3, 0.90), ef: (0.6, 0.93), 128: (0.9, 0.97), 256: (1.5, 0.99)}),
            _run(200_000, 192, 25.0, {32: (0.5, 0.97), ef: (0.8, 0.99)}),
        ]
    )
    found = {t["name"]: t for t in evaluate_targets(results)}
    latency = found[
        "comparables, 200,000 listings: a query (batch 1, k=5) of the search chosen for that size, p50 <= 5 ms"
    ]
    assert (latency["pass"], latency["value"]) == (True, 0.4)
    assert (
        latency["measured"]
        == f"0.40 ms (hnsw, efSearch {ef}; p99 0.80 ms); exact 9.00 ms (13.50 ms on every BLAS thread), hnsw 0.40 ms"
    )
    recall = found[
        f"comparables, 2,000,000 listings: HNSW recall@5 against exact search >= 0.95 (efSearch {ef}, the default)"
    ]
    assert (recall["pass"], recall["value"]) == (False, 0.93)
    assert recall["measured"].endswith(
        "the smallest efSearch of 32, 64, 128, 256 reaching 0.95: 128 (0.9700, p50 0.90 ms)"
    )
    exact = found["(not in the issue) comparables: exact search at EXACT_MAX = 50,000 listings, p50 <= 2 ms"]
    assert (exact["pass"], exact["measured"]) == (False, "2.50 ms (p99 5.00 ms) (3.75 ms on every BLAS thread)")

    results["targets"] = evaluate_targets(results)
    write_markdown(results, tmp_path / "latest.md")
    text = (tmp_path / "latest.md").read_text()
    assert "## Comparables search" in text
    assert (
        f"| 200,000 | 64 | **hnsw** | {ef} (default) | 0.400 | 0.800 | 0.400 | 1.0000 | 12.5 | 48.8 | 138.9 |" in text
    )
    assert "| 20,000 | 64 | **exact** | - | 0.300 | 0.600 | 0.300 | 1 | 0.01 | 4.9 | 2.4 |" in text
    assert "| 20,000 | 64 | exact, every BLAS thread | - | 0.450 | 0.900 | 0.450 | 1 | | | |" in text
    assert "| 2,000,000 | 64 | hnsw | 256 | 1.500 | 3.000 | 1.500 | 0.9900 |" in text
    assert "2,000,000 x 64: 128; 200,000 x 192: 32." in text
    assert "| comparables, 2,000,000 listings: HNSW recall@5" in text and "| **FAIL** |" in text


def test_a_quick_run_stands_for_the_largest_size_it_measured():
    results = _results([_run(2000, 64, 0.05, {32: (0.05, 1.0)}), _run(20_000, 64, 0.3, {32: (0.1, 0.99)})])
    results["comparables"]["hnsw"]["ef_search"] = 32
    assert find_run(results, 200_000)["rows"] == 20_000
    names = {t["name"]: t["pass"] for t in evaluate_targets(results)}
    assert names["comparables, 20,000 listings: a query (batch 1, k=5) of the search chosen for that size, p50 <= 5 ms"]
    assert names["comparables, 20,000 listings: HNSW recall@5 against exact search >= 0.95 (efSearch 32, the default)"]
    assert not any("EXACT_MAX" in name for name in names)  # the threshold's size was not measured


def test_a_failed_or_skipped_part_is_not_measured():
    for part in ({"error": "RuntimeError: boom"}, None):
        results = {"comparables": part} if part else {}
        verdicts = [t["pass"] for t in comparables.targets(results)]
        assert verdicts == [None, None]
        assert comparables.markdown(results)[-1] == (
            "not measured (RuntimeError: boom)" if part else "not measured (skipped)"
        )


def test_the_part_runs_through_its_command_line_at_tiny_sizes():
    profile = replace(QUICK, comparables_sizes=("500", "1500x16"), comparables_queries=30,
                      comparables_latency_queries=25, comparables_ef_search=(16,))  # fmt: skip
    r = comparables.run(profile)
    assert [(x["rows"], x["dim"], x["chosen"]) for x in r["runs"]] == [(500, 64, "exact"), (1500, 16, "exact")]
    assert r["k"] == 5 and r["queries"] == 30 and r["exact_max"] == EXACT_MAX
    for x in r["runs"]:
        assert x["vectors_bytes"] == x["rows"] * x["dim"] * 4
        assert x["vectors_file_bytes"] > x["rows"] * x["dim"] * 2  # float16 and the .npy header
        assert x["exact"]["samples"] == 25 and x["exact"]["latency_ms"]["p50"] > 0
        assert x["exact_all_threads"]["samples"] == 25 and x["exact_all_threads"]["cpu_ms_per_query"] > 0
        h = x["hnsw"]
        assert set(h["ef_search"]) == {"16", str(HNSW_EF_SEARCH)}  # the default is always measured
        assert h["build_s"] > 0 and h["index_file_bytes"] > x["vectors_bytes"]  # float32 copy plus links
        assert h["ef_search"][str(HNSW_EF_SEARCH)]["recall_at_k"] >= 0.9  # near-exact at these sizes
        assert h["min_ef_search_for_recall"] in (16, HNSW_EF_SEARCH)
    assert [t["pass"] is not None for t in comparables.targets({"comparables": r})] == [True, True]


def test_a_large_graph_is_kept_and_reused_only_with_the_same_recipe(tmp_path: Path):
    args = ["--queries", "20", "--latency-queries", "20", "--cache", str(tmp_path), "--cache-min-rows", "800"]
    a = comparables.parse_args(args)
    first = comparables.measure_size(800, 8, a, [HNSW_EF_SEARCH])
    assert first["hnsw"]["cached"] is False
    assert (tmp_path / "800x8-m32-efc200" / "hnsw.faiss").stat().st_size == first["hnsw"]["index_file_bytes"]
    again = comparables.measure_size(800, 8, a, [HNSW_EF_SEARCH])
    assert again["hnsw"]["cached"] is True
    assert again["hnsw"]["build_s"] == first["hnsw"]["build_s"]  # the build that made it
    assert again["vectors_file_bytes"] == first["vectors_file_bytes"]
    ef = str(HNSW_EF_SEARCH)
    assert again["hnsw"]["ef_search"][ef]["recall_at_k"] == first["hnsw"]["ef_search"][ef]["recall_at_k"]
    other_data = comparables.parse_args([*args, "--seed", "1"])  # same folder, other vectors: built again
    assert comparables.measure_size(800, 8, other_data, [HNSW_EF_SEARCH])["hnsw"]["cached"] is False
    small = comparables.measure_size(500, 8, a, [HNSW_EF_SEARCH])  # below --cache-min-rows
    assert small["hnsw"]["cached"] is False and not (tmp_path / "500x8-m32-efc200").exists()
