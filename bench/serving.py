"""The servers the benchmark drives and how: each under uvicorn in its own process on a free
127.0.0.1 port (harness/server.py), the load generator (bench/load.py) in yet another, one run
per level of concurrency; the server's resident memory when ready and its peak after the last
level; for the micro-batched service, one client in turns with the bound (bench/paired.py), which
the one-client target is judged on. And the bound (bench/bound.py) in its own process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.common import run_json, say, server_memory
from harness.models import newest_servable
from harness.server import ServiceProcess


@dataclass(frozen=True)
class ServerSpec:
    label: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    module: str | None = None  # run `python -m MODULE` (HOST/PORT from the env) instead of `uvicorn APP`
    path: str = "/v1/predict"
    levels: tuple[int, ...] | None = None  # None: the profile's levels
    paired: bool = False  # also bench/paired.py at one client, in turns with the bound (after the levels)


# The price alone: the same model work per request as the bound and the naive service (the
# service's default answer may add contributions, i.e. more model rows per item; a service
# without that option ignores the query).
PRICE_ONLY = "/v1/predict?explain=false&comparables=0"  # the price alone: what the bound computes


def server_specs(model_dir: Path) -> dict[str, ServerSpec]:
    """The servers; the service runs as it ships (`python -m service`: uvicorn with its own h11
    protocol class), with its default settings but for batching and no folder watching."""
    common = {"MODEL_DIR": str(model_dir), "RELOAD_INTERVAL_S": "0"}

    def service(label: str, path: str = PRICE_ONLY, levels: tuple[int, ...] | None = None, **env: str) -> ServerSpec:
        return ServerSpec(label, "service.main:app", {**common, **env}, module="service", path=path, levels=levels)

    def naive(label: str, call: str) -> ServerSpec:
        return ServerSpec(label, "bench.naive_service:app", {"MODEL_DIR": str(model_dir), "NAIVE_CALL": call})

    return {
        "batched": replace(
            service("service, micro-batching on (32 rows, adaptive: no wait)", BATCH_MAX_SIZE="32"), paired=True
        ),
        "unbatched": service("service, micro-batching off", BATCH_MAX_SIZE="1"),
        # The batcher before it was adaptive: every call waits up to 5 ms for company, even when
        # the model is idle (bigger batches under moderate load, 5 ms more for a lone request).
        "batched_wait": service("service, micro-batching on, 5 ms wait", BATCH_MAX_SIZE="32", BATCH_MAX_WAIT_MS="5"),
        "batched_default_answer": service(
            "service, micro-batching on, default answer (+ contributions if the model has them)",
            path="/v1/predict",
            levels=(1, 32),
            BATCH_MAX_SIZE="32",
        ),
        "naive": naive("naive: model.predict per request", "predict"),
        "naive_signature": naive("naive: SavedModel signature per request", "signature"),
    }


def load_args(url: str, path: str, payloads: Path, clients: int, profile: Any, server_pid: int) -> list[str]:
    """The command line of one bench.load run."""
    options = {
        "--url": url,
        "--path": path,
        "--payloads": payloads,
        "--concurrency": clients,
        "--duration": profile.duration_s,
        "--warmup": profile.warmup_s,
        "--min-samples": profile.min_samples,
        "--max": profile.max_window_s,
        "--server-pid": server_pid,
    }
    return ["-m", "bench.load", *[str(x) for option in options.items() for x in option]]


def bench_server(spec: ServerSpec, profile: Any, payloads: Path, logs: Path) -> dict[str, Any]:
    """Start the server of ``spec``, run the load generator at each level, stop it."""
    out: dict[str, Any] = {
        "label": spec.label,
        "app": spec.app,
        "module": spec.module,
        "path": spec.path,
        "env": spec.env,
        "levels": {},
    }
    log = logs / f"{spec.app.split(':')[0]}-{time.time_ns()}.log"
    server = ServiceProcess(log, spec.env, app=None if spec.module else spec.app, module=spec.module or "service")
    say(f"{spec.label}: starting {server.name}")
    with server:
        out["startup_s"] = round(server.started_s, 1)
        out["memory_ready"] = server_memory(server.pid)
        say(f"{spec.label}: ready after {server.started_s:.0f} s (pid {server.pid}, {server.url})")
        levels = spec.levels or (profile.naive_levels if spec.app.startswith("bench.naive") else profile.levels)
        for clients in levels:
            args = load_args(server.url, spec.path, payloads, clients, profile, server.pid)
            result = run_json(args, timeout=3 * profile.max_window_s + 300)
            out["levels"][str(clients)] = result
            lat = result["latency_ms"]
            say(
                f"{spec.label}: {clients:>2} clients: {result['throughput_rps']:7.1f} req/s, "
                f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                f"server CPU {result.get('server_cpu_ms_per_prediction', float('nan')):.1f} ms/prediction, "
                f"{result['errors']} errors"
            )
        out["memory"] = server_memory(server.pid)  # before it stops: the peak over every level
        if spec.paired:
            out["paired"] = run_paired(server.url, spec, profile, payloads)
    say(f"{spec.label}: peak RSS {out['memory'].get('peak_rss_mib', float('nan')):.0f} MiB")
    return out


def run_paired(url: str, spec: ServerSpec, profile: Any, payloads: Path) -> dict[str, Any]:
    """bench/paired.py against the running server: its one-client p50 and the bound's, in turns."""
    version = newest_servable(Path(spec.env["MODEL_DIR"]))
    assert version is not None
    say(f"{spec.label}: 1 client in turns with the bound ({profile.paired_rounds} rounds of {profile.paired_block})")
    args = ["-m", "bench.paired", "--url", url, "--path", spec.path, "--model", str(version),
            "--payloads", str(payloads), "--rounds", str(profile.paired_rounds), "--block", str(profile.paired_block)]  # fmt: skip
    result = run_json(args, timeout=1800)
    say(
        f"{spec.label}: in turns: service p50 {result['service_ms']['p50']:.2f} ms, bound batch-1 p50 "
        f"{result['bound_ms']['p50']:.2f} ms: {result['gap_p50_ms']:+.2f} ms"
    )
    return result


def run_bound(profile: Any, version: Path, payloads: Path, label: str = "bound") -> dict[str, Any]:
    """bench.bound on ``version`` in its own process (batch 1, 8 and 32)."""
    say(f"{label}: the SavedModel in process on raw inputs")
    args = ["-m", "bench.bound", "--model", str(version), "--payloads", str(payloads),
            "--calls", str(profile.bound_calls), "--batch-calls", str(profile.bound_batch_calls)]  # fmt: skip
    bound = run_json(args, timeout=1800)
    say(
        f"{label}: batch 1 p50 {bound['batch1_latency_ms']['p50']:.2f} ms, "
        f"p99 {bound['batch1_latency_ms']['p99']:.2f} ms; batch 32: {bound['batch32_items_per_s']:.0f} items/s"
    )
    return bound
