"""``python -m bench`` (``make bench``): every benchmark of the issue in one run, side by side.

Each part runs in its own process: the input pipeline and the bound (TensorFlow in process), two
training runs for the memory figure, and each server (the service with micro-batching on and
off, the naive tutorial-style service) under uvicorn on a free 127.0.0.1 port, driven by the load
generator (bench/load.py) in yet another process. Writes bench/results/latest.json, latest.md
and latency_throughput.png. ``--quick`` (or QUICK=1) is the short version for CI (every part
smaller; about 4-7 minutes on 2 shared cores, most of it fixed costs: TensorFlow start-up and tracing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, Server, make_payloads, newest_version, run_json, say


@dataclass(frozen=True)
class Profile:
    payloads: int
    bound_calls: int
    bound_batch_calls: int
    pipeline_rows: int
    pipeline_repeats: int
    memory_n: int
    levels: tuple[int, ...]
    duration_s: float
    warmup_s: float
    max_window_s: float  # a slow server's window is stretched up to this to get min_samples answers
    min_samples: int
    servers: tuple[str, ...]
    naive_levels: tuple[int, ...]  # model.predict per request is so slow that quick runs skip levels


FULL = Profile(
    payloads=64,
    bound_calls=300,
    bound_batch_calls=30,
    pipeline_rows=2048,
    pipeline_repeats=5,
    memory_n=2000,
    levels=(1, 8, 32, 64),
    duration_s=15.0,
    warmup_s=3.0,
    max_window_s=60.0,
    min_samples=50,
    servers=("batched", "unbatched", "batched_wait", "batched_default_answer", "naive", "naive_signature"),
    naive_levels=(1, 8, 32, 64),
)
QUICK = Profile(
    payloads=32,
    bound_calls=100,
    bound_batch_calls=8,
    pipeline_rows=512,
    pipeline_repeats=3,
    memory_n=300,
    levels=(1, 8, 32, 64),
    duration_s=3.0,
    warmup_s=1.0,
    max_window_s=15.0,
    min_samples=20,
    servers=("batched", "unbatched", "naive"),
    naive_levels=(1, 32),
)


@dataclass(frozen=True)
class ServerSpec:
    label: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    module: str | None = None  # run `python -m MODULE` (HOST/PORT from the env) instead of `uvicorn APP`
    path: str = "/v1/predict"
    levels: tuple[int, ...] | None = None  # None: the profile's levels


# The price alone: the same model work per request as the bound and the naive service (the
# service's default answer may add contributions, i.e. more model rows per item; a service
# without that option ignores the query).
PRICE_ONLY = "/v1/predict?explain=false"


def server_specs(model_dir: Path) -> dict[str, ServerSpec]:
    """The servers; the service runs as it ships (`python -m service`: uvicorn with its own h11
    protocol class), with its default settings but for batching and no folder watching."""
    common = {"MODEL_DIR": str(model_dir), "RELOAD_INTERVAL_S": "0"}
    return {
        "batched": ServerSpec(
            "service, micro-batching on (32 rows, adaptive: no wait)",
            "service.main:app",
            {**common, "BATCH_MAX_SIZE": "32"},
            module="service",
            path=PRICE_ONLY,
        ),
        "unbatched": ServerSpec(
            "service, micro-batching off",
            "service.main:app",
            {**common, "BATCH_MAX_SIZE": "1"},
            module="service",
            path=PRICE_ONLY,
        ),
        # The batcher before it was adaptive: every call waits up to 5 ms for company, even when
        # the model is idle (bigger batches under moderate load, 5 ms more for a lone request).
        "batched_wait": ServerSpec(
            "service, micro-batching on, 5 ms wait",
            "service.main:app",
            {**common, "BATCH_MAX_SIZE": "32", "BATCH_MAX_WAIT_MS": "5"},
            module="service",
            path=PRICE_ONLY,
        ),
        "batched_default_answer": ServerSpec(
            "service, micro-batching on, default answer (+ contributions if the model has them)",
            "service.main:app",
            {**common, "BATCH_MAX_SIZE": "32"},
            module="service",
            levels=(1, 32),
        ),
        "naive": ServerSpec(
            "naive: model.predict per request",
            "bench.naive_service:app",
            {"MODEL_DIR": str(model_dir), "NAIVE_CALL": "predict"},
        ),
        "naive_signature": ServerSpec(
            "naive: SavedModel signature per request",
            "bench.naive_service:app",
            {"MODEL_DIR": str(model_dir), "NAIVE_CALL": "signature"},
        ),
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gib = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit,
        "load_average_start": os.getloadavg(),
    }


def run_section(results: dict[str, Any], name: str, fn: Any) -> None:
    """Run one part; a failure is recorded (and reported) without stopping the others."""
    started = time.monotonic()
    try:
        results[name] = fn()
    except Exception as exc:  # noqa: BLE001 - one broken part must not hide the others
        say(f"{name}: FAILED: {type(exc).__name__}: {str(exc)[:2000]}")
        traceback.print_exc(file=sys.stderr)
        results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
    results.setdefault("section_seconds", {})[name] = round(time.monotonic() - started, 1)


def bench_server(spec: ServerSpec, profile: Profile, payloads: Path, logs: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": spec.label,
        "app": spec.app,
        "module": spec.module,
        "path": spec.path,
        "env": spec.env,
        "levels": {},
    }
    say(f"{spec.label}: starting " + (f"python -m {spec.module}" if spec.module else f"uvicorn {spec.app}"))
    log = logs / f"{spec.app.split(':')[0]}-{time.time_ns()}.log"
    with Server(spec.app, spec.env, log, module=spec.module) as server:
        out["startup_s"] = round(server.started_s, 1)
        say(f"{spec.label}: ready after {server.started_s:.0f} s (pid {server.pid}, {server.url})")
        levels = spec.levels or (profile.naive_levels if spec.app.startswith("bench.naive") else profile.levels)
        for clients in levels:
            result = run_json(
                [
                    "-m",
                    "bench.load",
                    "--url",
                    server.url,
                    "--path",
                    spec.path,
                    "--payloads",
                    str(payloads),
                    "--concurrency",
                    str(clients),
                    "--duration",
                    str(profile.duration_s),
                    "--warmup",
                    str(profile.warmup_s),
                    "--min-samples",
                    str(profile.min_samples),
                    "--max",
                    str(profile.max_window_s),
                    "--server-pid",
                    str(server.pid),
                ],
                timeout=3 * profile.max_window_s + 300,
            )
            out["levels"][str(clients)] = result
            lat = result["latency_ms"]
            say(
                f"{spec.label}: {clients:>2} clients: {result['throughput_rps']:7.1f} req/s, "
                f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                f"server CPU {result.get('server_cpu_ms_per_prediction', float('nan')):.1f} ms/prediction, "
                f"{result['errors']} errors"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("QUICK", "") not in ("", "0"),
        help="the short version for CI (also QUICK=1)",
    )
    p.add_argument("--model-dir", type=Path, default=ROOT / "models/price", help="folder of model versions")
    p.add_argument("--out", type=Path, default=ROOT / "bench/results")
    p.add_argument(
        "--only",
        default="pipeline,memory,bound,servers",
        help="comma-separated parts to run: pipeline, memory, bound, servers",
    )
    p.add_argument(
        "--servers",
        default=None,
        help="comma-separated servers (batched, unbatched, batched_wait, batched_default_answer, naive, "
        "naive_signature); "
        "default: the mode's list",
    )
    a = p.parse_args(argv)
    profile = QUICK if a.quick else FULL
    a.model_dir = a.model_dir.resolve()
    parts = set(a.only.split(","))
    known = set(server_specs(a.model_dir))
    chosen = a.servers.split(",") if a.servers else list(profile.servers)
    if not parts <= {"pipeline", "memory", "bound", "servers"} or not set(chosen) <= known:
        print(
            f"error: --only takes pipeline,memory,bound,servers and --servers {','.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    version = newest_version(a.model_dir)
    if version is None:
        print(f"error: no model version under {a.model_dir}: run `make train` first", file=sys.stderr)
        return 2
    data_table = ROOT / "data/synthetic/items.csv"
    if "pipeline" in parts and not data_table.exists():
        print(f"error: {data_table} is missing: run `make train` first", file=sys.stderr)
        return 2

    started = time.monotonic()
    results: dict[str, Any] = {
        "mode": "quick" if a.quick else "full",
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "model": {"dir": str(a.model_dir), "version": version.name},
        "profile": asdict(profile),
    }
    say(
        f"{results['mode']} run on {results['machine']['cores']} cores ({results['machine']['cpu']}), "
        f"load average {results['machine']['load_average_start'][0]:.1f}; model {version}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        say(f"payloads: generating {profile.payloads} synthetic listings as /v1/predict bodies")
        payloads = make_payloads(version, profile.payloads, work)
        # Every server serves this very version, even if `make train` exports a newer one meanwhile.
        pinned = work / "models"
        pinned.mkdir()
        (pinned / version.name).symlink_to(version, target_is_directory=True)

        if "pipeline" in parts:
            run_section(
                results,
                "pipeline",
                lambda: run_json(
                    [
                        "-m",
                        "bench.pipeline",
                        "--rows",
                        str(profile.pipeline_rows),
                        "--repeats",
                        str(profile.pipeline_repeats),
                    ],
                    timeout=1800,
                ),
            )
        if "memory" in parts:
            from bench.memory import measure

            run_section(results, "memory", lambda: measure(profile.memory_n))
        if "bound" in parts:
            say("bound: the SavedModel in process on raw inputs")
            run_section(
                results,
                "bound",
                lambda: run_json(
                    [
                        "-m",
                        "bench.bound",
                        "--model",
                        str(version),
                        "--payloads",
                        str(payloads),
                        "--calls",
                        str(profile.bound_calls),
                        "--batch-calls",
                        str(profile.bound_batch_calls),
                    ],
                    timeout=900,
                ),
            )
            bound = results["bound"]
            if "error" not in bound:
                say(
                    f"bound: batch 1 p50 {bound['batch1_latency_ms']['p50']:.2f} ms, "
                    f"p99 {bound['batch1_latency_ms']['p99']:.2f} ms; batch 32: "
                    f"{bound['batch32_items_per_s']:.0f} items/s"
                )
        if "servers" in parts:
            specs = server_specs(pinned)
            servers: dict[str, Any] = {}
            results["servers"] = servers
            for key in chosen:
                run_section(servers, key, lambda key=key: bench_server(specs[key], profile, payloads, work / "logs"))
            servers.pop("section_seconds", None)

    results["machine"]["load_average_end"] = os.getloadavg()
    results["seconds"] = round(time.monotonic() - started, 1)
    from bench.report import evaluate_targets, write_markdown, write_plot

    results["targets"] = evaluate_targets(results)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, a.out / "latest.md")
    plot = write_plot(results, a.out / "latency_throughput.png")
    say(
        f"wrote {a.out / 'latest.json'}, {a.out / 'latest.md'}"
        + (f", {plot}" if plot else "")
        + f" in {results['seconds'] / 60:.1f} min"
    )
    for target in results["targets"]:
        say(
            f"target {'PASS' if target['pass'] else 'FAIL' if target['pass'] is False else 'n/a '}: "
            f"{target['name']}: {target['measured']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
