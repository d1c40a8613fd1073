"""Comparables search (common/neighbours.py): query latency, recall@k of HNSW against exact search,
build time and size, at the numbers of stored listings the issue names.

``python -m bench.comparables --sizes 20000,200000,2000000,200000x192`` (``ROWS`` at ``--dim``, or
``ROWSxDIM``) measures, for each size:

- synthetic embeddings: a mixture of Gaussians around ``--centres`` random unit centres (cluster
  sizes uneven, weights proportional to rank^-0.5), isotropic noise of norm about ``--spread``
  times the centre's, unit-normalised; the queries are fresh draws from the same mixture (new
  listings, not stored ones). Isotropic noise inside a cluster is the hard case for a graph
  index (real embeddings have fewer effective dimensions), so the recall here errs low;
- exact search (``Neighbours.build(..., "exact")``): the ground truth, searched in batches of 64
  queries over all ``--queries``, and one query at a time (batch 1, k=5, as a prediction asks),
  on one BLAS thread (as the service searches) and again on numpy's default threads;
- HNSW (``Neighbours.build(..., "hnsw")``, the module's M and efConstruction unless ``--m`` and
  ``--ef-construction`` say otherwise): the build time,
  and for each efSearch of ``--ef-search`` (the module's default always among them) recall@k
  against the exact top k and the batch-1 latency;
- the files ``Neighbours.save`` writes (vectors.npy in float16, hnsw.faiss) and the float32
  vectors' bytes in memory.

An HNSW graph of ``--cache-min-rows`` (200,000) rows or more is kept in ``--cache``
(models/bench-comparables/ROWSxDIM-mM-efcE, with the recipe it was built from: sizes, data
settings, M, efConstruction, the faiss version, a SHA-256 of the generated vectors, and its build
time) and reused by a later run with the same recipe, as bench/pretrained.py reuses its model:
the 2M build takes 10-20 minutes on 2 shared cores. A reused graph's build time is the one
measured when it was built (``"cached": true``); ``--no-cache`` builds every graph afresh.

Latency: ``--latency-queries`` single queries after a few untimed ones, wall time per call
(p50/p90/p99 in ms) and the process's CPU time per query; a slow search stops after
``--max-seconds`` (and at least 20 queries). The search the service would choose at each size is
``choose_search(rows)``. Prints one JSON line. The targets and the report's section are here too
(``targets``, ``markdown``: bench/report.py); faiss is imported only to measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, dig, fmt, percentiles, run_json, say, target
from common.files import atomic_write_text
from common.neighbours import (
    EXACT_MAX,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_FILE,
    HNSW_M,
    VECTORS_FILE,
    Neighbours,
    choose_search,
    unit_rows,
)

K = 5
DIM = 64
LATENCY_ROWS = 200_000  # the issue: a query adds at most 5 ms p50 to a prediction at 200k listings
LATENCY_MAX_MS = 5.0
RECALL_ROWS = 2_000_000  # the issue: recall@5 >= 0.95 at 2M listings
RECALL_MIN = 0.95
EXACT_AT_MAX_MS = 2.0  # exact search at EXACT_MAX stays well below the 5 ms
GROUND_TRUTH_BATCH = 64
MIN_SAMPLES = 20
WARMUP = 5
_CHUNK = 1 << 18  # rows drawn at a time (bounds the temporaries at 2M rows)
CACHE = ROOT / "models" / "bench-comparables"
CACHE_MIN_ROWS = 200_000
RECIPE_FILE = "recipe.json"


# -- synthetic embeddings -----------------------------------------------------------------------


def mixture(dim: int, centres: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit centres [c, dim] float32, cluster weights [c], proportional to rank^-0.5)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    w = 1.0 / np.sqrt(np.arange(1, centres + 1))
    return c, w / w.sum()


def clustered(
    rows: int, dim: int, *, centres: int = 1000, spread: float = 0.75, seed: int = 0, stream: int = 0
) -> np.ndarray:
    """``rows`` unit vectors [rows, dim] float32 from the mixture of ``seed``; ``stream`` picks
    independent draws from the same mixture (0: the stored listings, 1: the queries)."""
    c, w = mixture(dim, centres, seed)
    rng = np.random.default_rng([seed, stream + 1])
    out = np.empty((rows, dim), np.float32)
    scale = np.float32(spread / np.sqrt(dim))
    for start in range(0, rows, _CHUNK):
        n = min(_CHUNK, rows - start)
        x = c[rng.choice(centres, n, p=w)]
        x += scale * rng.standard_normal((n, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + n] = x
    return out


# -- measures -----------------------------------------------------------------------------------


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / k: ``truth`` [b, k] the exact top k (distinct rows),
    ``found`` [b, k] in any order; each true neighbour counts once, however often it is found,
    and faiss's -1 for a missing result never matches."""
    found, truth = np.asarray(found), np.asarray(truth)
    if found.shape != truth.shape or truth.ndim != 2 or truth.shape[1] == 0:
        raise ValueError(f"found {found.shape} and truth {truth.shape} must both be [queries, k], k > 0")
    hits = (truth[:, :, None] == found[:, None, :]).any(axis=2).sum(axis=1)
    return float(hits.mean() / truth.shape[1])


def exact_top_k(nb: Neighbours, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """(indices [b, k] of the exact search, ms per query), in batches of GROUND_TRUTH_BATCH."""
    started = time.perf_counter()
    parts = [nb.search(queries[i : i + GROUND_TRUTH_BATCH], k)[0] for i in range(0, len(queries), GROUND_TRUTH_BATCH)]
    return np.concatenate(parts), (time.perf_counter() - started) * 1000.0 / len(queries)


def time_queries(nb: Neighbours, queries: np.ndarray, k: int, max_s: float) -> dict[str, Any]:
    """Single queries (batch 1): wall-time percentiles (ms), CPU ms per query, how many."""
    for q in queries[:WARMUP]:
        nb.search(q[None], k)
    seconds: list[float] = []
    cpu0, started = time.process_time(), time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        nb.search(q[None], k)
        seconds.append(time.perf_counter() - t0)
        if len(seconds) >= MIN_SAMPLES and time.perf_counter() - started > max_s:
            break
    cpu_ms = (time.process_time() - cpu0) * 1000.0 / len(seconds)
    return {"latency_ms": percentiles(seconds), "cpu_ms_per_query": cpu_ms, "samples": len(seconds)}


@contextmanager
def heartbeat(what: str, every_s: float = 60.0) -> Iterator[None]:
    """A progress line every ``every_s`` while a long call runs (faiss releases the GIL)."""
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(every_s):
            say(f"{what} running_s={time.monotonic() - started:.0f}")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def parse_size(spec: str, dim: int) -> tuple[int, int]:
    """``200000`` -> (200000, dim); ``200000x192`` -> (200000, 192)."""
    rows, _, d = spec.strip().lower().partition("x")
    n, d = int(rows.replace("_", "")), int(d) if d else dim
    if n <= 0 or d <= 0:
        raise ValueError(f"a size is ROWS or ROWSxDIM, both positive: {spec!r}")
    return n, d


def measure_size(rows: int, dim: int, a: argparse.Namespace, ef_values: Sequence[int]) -> dict[str, Any]:
    """Exact and HNSW search over ``rows`` stored vectors of ``dim``: one entry of ``runs``."""
    tag = f"comparables: rows={rows} dim={dim}"
    t0 = time.perf_counter()
    stored = clustered(rows, dim, centres=a.centres, spread=a.spread, seed=a.seed, stream=0)
    queries = clustered(a.queries, dim, centres=a.centres, spread=a.spread, seed=a.seed, stream=1)
    out: dict[str, Any] = {
        "rows": rows,
        "dim": dim,
        "chosen": choose_search(rows),
        "generate_s": round(time.perf_counter() - t0, 2),
        "vectors_bytes": rows * dim * 4,  # float32 in memory, as Neighbours holds them
    }
    t0 = time.perf_counter()
    exact = Neighbours.build(stored, "exact")
    exact_build = time.perf_counter() - t0
    truth, batched_ms = exact_top_k(exact, queries, a.k)
    timed = time_queries(exact, queries[: a.latency_queries], a.k, a.max_seconds)
    out["exact"] = {"build_s": round(exact_build, 3), "batched_ms_per_query": batched_ms, **timed}
    say(f"{tag} exact p50_ms={timed['latency_ms']['p50']:.3f} p99_ms={timed['latency_ms']['p99']:.3f}")
    exact.one_thread = False  # the same product on numpy's default BLAS threads, for comparison
    every = time_queries(exact, queries[: a.latency_queries], a.k, a.max_seconds)
    out["exact_all_threads"] = every
    say(f"{tag} exact blas_threads=all p50_ms={every['latency_ms']['p50']:.3f} p99_ms={every['latency_ms']['p99']:.3f}")
    del exact

    hnsw, built = hnsw_index(stored, a, tag)
    del stored
    sweep: dict[str, Any] = {}
    for ef in ef_values:
        nb = Neighbours(hnsw.vectors, hnsw.ann, ef_search=ef)
        recall = recall_at_k(nb.search(queries, a.k)[0], truth)
        sweep[str(ef)] = {"recall_at_k": recall, **time_queries(nb, queries[: a.latency_queries], a.k, a.max_seconds)}
        say(f"{tag} hnsw ef_search={ef} recall_at_{a.k}={recall:.4f} p50_ms={sweep[str(ef)]['latency_ms']['p50']:.3f}")
    reaching = [int(ef) for ef, x in sweep.items() if x["recall_at_k"] >= RECALL_MIN]
    out["vectors_file_bytes"] = built.pop("vectors_file_bytes")
    out["hnsw"] = {**built, "ef_search": sweep, "min_ef_search_for_recall": min(reaching) if reaching else None}
    return out


def recipe(stored: np.ndarray, a: argparse.Namespace) -> dict[str, Any]:
    """What a cached HNSW graph must have been built from to be reused."""
    import faiss

    rows, dim = stored.shape
    return {
        "rows": rows, "dim": dim, "centres": a.centres, "spread": a.spread, "seed": a.seed,
        "m": a.m, "ef_construction": a.ef_construction, "faiss": faiss.__version__,
        "vectors_sha256": hashlib.sha256(np.ascontiguousarray(stored).data).hexdigest(),
    }  # fmt: skip


def cached(folder: Path, want: dict[str, Any], vectors: np.ndarray) -> tuple[Neighbours, dict[str, Any]] | None:
    """The graph kept in ``folder`` if it was built from ``want`` (else None)."""
    try:
        found = json.loads((folder / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or {k: found.get(k) for k in want} != want or not (folder / HNSW_FILE).exists():
        return None
    import faiss

    index = faiss.read_index(str(folder / HNSW_FILE))
    if index.ntotal != want["rows"] or index.d != want["dim"]:
        return None
    info = {k: found[k] for k in ("build_s", "built", "index_file_bytes", "vectors_file_bytes")}
    return Neighbours(vectors, index), {**info, "cached": True}


def hnsw_index(stored: np.ndarray, a: argparse.Namespace, tag: str) -> tuple[Neighbours, dict[str, Any]]:
    """The HNSW index over ``stored`` (built, or reused from the cache) and its build time and files."""
    rows, dim = stored.shape
    folder = a.cache / f"{rows}x{dim}-m{a.m}-efc{a.ef_construction}" if a.cache and rows >= a.cache_min_rows else None
    want = recipe(stored, a) if folder else {}
    if folder and (found := cached(folder, want, unit_rows(stored))):
        say(f"{tag} hnsw reused folder={folder} build_s={found[1]['build_s']} built={found[1]['built']}")
        return found
    say(f"{tag} hnsw build m={a.m} ef_construction={a.ef_construction}")
    t0 = time.perf_counter()
    with heartbeat(f"{tag} hnsw build"):
        hnsw = Neighbours.build(stored, "hnsw", m=a.m, ef_construction=a.ef_construction)
    build_s = time.perf_counter() - t0
    say(f"{tag} hnsw built build_s={build_s:.1f}")
    info: dict[str, Any] = {
        "build_s": round(build_s, 2),
        "built": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with tempfile.TemporaryDirectory(prefix="bench-comparables-") as tmp:
        target_dir = folder or Path(tmp)
        if folder:
            (folder / RECIPE_FILE).unlink(missing_ok=True)  # another recipe's graph, if any, is replaced
            folder.mkdir(parents=True, exist_ok=True)
        hnsw.save(target_dir)
        info["vectors_file_bytes"] = (target_dir / VECTORS_FILE).stat().st_size
        info["index_file_bytes"] = (target_dir / HNSW_FILE).stat().st_size
        (target_dir / VECTORS_FILE).unlink()  # regenerated from the seed; the graph is what takes minutes
        if folder:
            atomic_write_text(folder / RECIPE_FILE, json.dumps({**want, **info}, indent=2) + "\n")
    return hnsw, {**info, "cached": False}


def measure(a: argparse.Namespace) -> dict[str, Any]:
    import faiss

    started = time.perf_counter()
    ef_values = sorted({*a.ef_search, HNSW_EF_SEARCH})
    sizes = [parse_size(s, a.dim) for s in a.sizes]
    say(f"comparables: sizes={','.join(f'{n}x{d}' for n, d in sizes)} queries={a.queries} k={a.k}")
    runs = [measure_size(n, d, a, ef_values) for n, d in sizes]
    return {
        "k": a.k,
        "dim": a.dim,
        "queries": a.queries,
        "latency_queries": a.latency_queries,
        "data": {"centres": a.centres, "spread": a.spread, "seed": a.seed},
        "exact_max": EXACT_MAX,
        "hnsw": {"m": a.m, "ef_construction": a.ef_construction, "ef_search": HNSW_EF_SEARCH},
        "recall_min": RECALL_MIN,
        "faiss_threads": faiss.omp_get_max_threads(),
        "cores_available": len(os.sched_getaffinity(0)),
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- from the orchestrator (bench/run.py) -------------------------------------------------------


def profile_args(profile: Any) -> list[str]:
    """The command line of this part for a bench Profile."""
    return ["--sizes", ",".join(profile.comparables_sizes),
            "--queries", str(profile.comparables_queries),
            "--latency-queries", str(profile.comparables_latency_queries),
            "--ef-search", ",".join(str(ef) for ef in profile.comparables_ef_search)]  # fmt: skip


def run(profile: Any) -> dict[str, Any]:
    """The part in its own process (the 2M index's memory goes with it)."""
    say(f"comparables: exact and HNSW search at {', '.join(profile.comparables_sizes)} stored listings")
    result = run_json(["-m", "bench.comparables", *profile_args(profile)], timeout=3600)
    say(f"comparables: done in {result['seconds'] / 60:.1f} min")
    return result


# -- targets and the report's section ----------------------------------------------------------


def find_run(r: dict[str, Any], rows: int, dim: int | None = None) -> dict[str, Any] | None:
    """The run of ``rows`` listings at ``dim`` (default: the part's --dim); else the largest one
    at that dim below ``rows`` (a quick run's sizes are smaller); None without any."""
    part = r.get("comparables") or {}
    dim = dim or part.get("dim", DIM)
    runs = [x for x in part.get("runs", []) if x["dim"] == dim and x["rows"] <= rows]
    return max(runs, key=lambda x: x["rows"], default=None)


def _chosen(run: dict[str, Any], ef: int) -> dict[str, Any]:
    return run["exact"] if run["chosen"] == "exact" else run["hnsw"]["ef_search"][str(ef)]


def _one_thread(run: dict[str, Any]) -> str:
    p50 = dig(run, "exact_all_threads", "latency_ms", "p50")
    return "" if p50 is None else f" ({p50:.2f} ms on every BLAS thread)"


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    part = r.get("comparables") or {}
    ef = dig(part, "hnsw", "ef_search") or HNSW_EF_SEARCH
    k = part.get("k", K)
    out = []
    run = find_run(r, LATENCY_ROWS)
    rows = run["rows"] if run else LATENCY_ROWS
    name = f"comparables, {rows:,} listings: a query (batch 1, k={k}) of the search chosen for that size, p50 <= {LATENCY_MAX_MS:g} ms"
    if run:
        lat = _chosen(run, ef)["latency_ms"]
        exact, hnsw = run["exact"]["latency_ms"]["p50"], run["hnsw"]["ef_search"][str(ef)]["latency_ms"]["p50"]
        text = (
            f"{lat['p50']:.2f} ms ({run['chosen']}{f', efSearch {ef}' if run['chosen'] == 'hnsw' else ''}; "
            f"p99 {lat['p99']:.2f} ms); exact {exact:.2f} ms{_one_thread(run)}, hnsw {hnsw:.2f} ms"
        )
        out.append(target(name, lat["p50"], LATENCY_MAX_MS, False, text))
    else:
        out.append(target(name, None, LATENCY_MAX_MS, False, ""))
    run = find_run(r, RECALL_ROWS)
    rows = run["rows"] if run else RECALL_ROWS
    name = f"comparables, {rows:,} listings: HNSW recall@{k} against exact search >= {RECALL_MIN} (efSearch {ef}, the default)"
    if run:
        sweep = run["hnsw"]["ef_search"]
        recall = sweep[str(ef)]["recall_at_k"]
        low = run["hnsw"]["min_ef_search_for_recall"]
        smallest = (
            f"{low} ({sweep[str(low)]['recall_at_k']:.4f}, p50 {sweep[str(low)]['latency_ms']['p50']:.2f} ms)"
            if low
            else "none"
        )
        text = (
            f"{recall:.4f} ({part.get('queries')} queries); "
            f"the smallest efSearch of {', '.join(sweep)} reaching {RECALL_MIN}: {smallest}"
        )
        out.append(target(name, recall, RECALL_MIN, True, text))
    else:
        out.append(target(name, None, RECALL_MIN, True, ""))
    limit = part.get("exact_max", EXACT_MAX)
    run = find_run(r, limit)
    if run and run["rows"] == limit:  # only where the threshold itself was measured
        p50 = run["exact"]["latency_ms"]["p50"]
        out.append(
            target(
                f"(not in the issue) comparables: exact search at EXACT_MAX = {limit:,} listings, p50 <= {EXACT_AT_MAX_MS:g} ms",
                p50,
                EXACT_AT_MAX_MS,
                False,
                f"{p50:.2f} ms (p99 {run['exact']['latency_ms']['p99']:.2f} ms){_one_thread(run)}",
            )
        )
    return out


def _mib(n: int | None) -> str:
    return fmt(None if n is None else n / 2**20, ".1f")


def _rows(run: dict[str, Any], default_ef: int) -> list[str]:
    """The table's rows of one size: exact, then HNSW at each efSearch; the chosen one in bold."""
    n, d = f"{run['rows']:,}", run["dim"]
    ex = run["exact"]
    mark = "**" if run["chosen"] == "exact" else ""
    lines = [
        f"| {n} | {d} | {mark}exact{mark} | - | {ex['latency_ms']['p50']:.3f} | {ex['latency_ms']['p99']:.3f} | "
        f"{ex['cpu_ms_per_query']:.3f} | 1 | {fmt(ex['build_s'], '.2f')} | {_mib(run['vectors_bytes'])} | "
        f"{_mib(run['vectors_file_bytes'])} |"
    ]
    one = run.get("exact_all_threads")
    if one:
        lines.append(
            f"| {n} | {d} | exact, every BLAS thread | - | {one['latency_ms']['p50']:.3f} | "
            f"{one['latency_ms']['p99']:.3f} | {one['cpu_ms_per_query']:.3f} | 1 | | | |"
        )
    h = run["hnsw"]
    for ef, x in h["ef_search"].items():
        mark = "**" if run["chosen"] == "hnsw" and int(ef) == default_ef else ""
        default = " (default)" if int(ef) == default_ef else ""
        lines.append(
            f"| {n} | {d} | {mark}hnsw{mark} | {ef}{default} | {x['latency_ms']['p50']:.3f} | "
            f"{x['latency_ms']['p99']:.3f} | {x['cpu_ms_per_query']:.3f} | {x['recall_at_k']:.4f} | "
            f"{fmt(h['build_s'], '.1f')}{' (kept)' if h.get('cached') else ''} | {_mib(run['vectors_bytes'])} | "
            f"{_mib(run['vectors_file_bytes'] + h['index_file_bytes'])} |"
        )
    return lines


def markdown(r: dict[str, Any]) -> list[str]:
    """The report's section: how it was measured and the table, or why it was not."""
    part = r.get("comparables") or {}
    lines = [
        "",
        "## Comparables search (common/neighbours.py: the k most similar stored listings; cosine here, the same cost as l2)",
        "",
    ]
    if "runs" not in part:
        return [*lines, f"not measured ({part.get('error', 'skipped')})"]
    h, data, k = part["hnsw"], part["data"], part["k"]
    lines += [
        f"Synthetic embeddings: a mixture of Gaussians around {data['centres']} unit centres (noise {data['spread']} "
        f"of a centre's norm, isotropic: the hard case for a graph index), unit-normalised; {part['queries']} "
        f"queries are new draws from the mixture. Exact search is the ground truth (k={k}). HNSW: faiss "
        f"IndexHNSWFlat, M={h['m']}, efConstruction={h['ef_construction']}, {part['faiss_threads']} threads to "
        f"build. Latency: one query at a time (batch 1, k={k}), up to {part['latency_queries']} after "
        f"{WARMUP} untimed; CPU ms is this process's CPU time per query. Exact search runs numpy's matrix "
        "product on one BLAS thread, as the service calls it (`one_blas_thread`); the 'every BLAS thread' row "
        "is the same search on numpy's default threads (on shared cores, waking BLAS worker threads can "
        "cost milliseconds per query). The search the service chooses "
        f"(`choose_search`: exact up to EXACT_MAX = {part['exact_max']:,} rows, HNSW at efSearch "
        f"{h['ef_search']} above) is in bold. Files: vectors.npy (float16) and hnsw.faiss, as `Neighbours.save` "
        "writes them. A build time marked (kept): the graph was built by an earlier run with the same "
        "recipe and kept in models/bench-comparables (`python -m bench.comparables --no-cache` builds afresh); "
        "the time is that build's.",
        "",
        f"| listings | dim | search | efSearch | p50 ms | p99 ms | CPU ms / query | recall@{k} | build s | "
        "vectors in RAM MiB | files MiB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in part["runs"]:
        lines += _rows(run, h["ef_search"])
    lows = [
        f"{run['rows']:,} x {run['dim']}: {fmt(run['hnsw']['min_ef_search_for_recall'], 'd')}" for run in part["runs"]
    ]
    lines += ["", f"Smallest efSearch measured with recall@{k} >= {part['recall_min']}: " + "; ".join(lows) + "."]
    lines.append(f"{part['seconds'] / 60:.1f} min in all (generating, building, searching).")
    return lines


# -- command line -------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.comparables", description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        type=lambda s: [x for x in s.split(",") if x.strip()],
        default=["20000", "50000", "200000", "2000000", "200000x192"],
        help="comma-separated stored listings, ROWS (at --dim) or ROWSxDIM (default: %(default)s)",
    )
    p.add_argument("--dim", type=int, default=DIM, help="the embedding's dimension where a size gives none")
    p.add_argument("--queries", type=int, default=500, help="queries for recall (exact ground truth)")
    p.add_argument("--latency-queries", type=int, default=300, help="single queries timed per search")
    p.add_argument("--max-seconds", type=float, default=10.0, help="stop timing a slow search after this")
    p.add_argument(
        "--ef-search", type=_ints, default=[32, 64, 128, 256], help="HNSW efSearch values (default and %(default)s)"
    )
    p.add_argument("--m", type=int, default=HNSW_M, help="HNSW links per node (default: the module's)")
    p.add_argument(
        "--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION, help="HNSW build effort (default: the module's)"
    )
    p.add_argument("--k", type=int, default=K)
    p.add_argument("--cache", type=Path, default=CACHE, help="where large HNSW graphs are kept for reuse")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None, help="build every graph afresh")
    p.add_argument("--cache-min-rows", type=int, default=CACHE_MIN_ROWS, help="the smallest graph kept")
    p.add_argument("--centres", type=int, default=1000, help="clusters of the synthetic embeddings")
    p.add_argument("--spread", type=float, default=0.75, help="noise norm relative to a centre's")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.queries < 1 or a.latency_queries < 1 or a.k < 1 or not a.ef_search:
        p.error("--queries, --latency-queries and --k must be positive, --ef-search non-empty")
    try:
        [parse_size(s, a.dim) for s in a.sizes]
    except ValueError as exc:
        p.error(str(exc))
    return a


def main(argv: list[str] | None = None) -> int:
    result = measure(parse_args(argv))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
