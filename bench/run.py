"""``python -m bench`` (``make bench``): every benchmark of the issue in one run, side by side.

Each part runs in its own process: the input pipeline and the bound (TensorFlow in process), two
training runs for the memory figure, and each server (the service with micro-batching on and
off, the naive tutorial-style service) under uvicorn on a free 127.0.0.1 port, driven by the load
generator (bench/load.py) in yet another process; the micro-batched service also at one client
in turns with the bound (bench/paired.py: both in the same minutes, which the one-client target
needs). The served model with the pretrained photo encoder (bench/pretrained.py: trained once by
the bench unless ``--pretrained-model-dir`` holds one) gets the same bound and micro-batched
service, beside the scratch model of ``--model-dir``; bench/features.py times `make train`'s
feature pass of that encoder; bench/comparables.py the comparables search (exact and HNSW, latency
and recall at 20k to 2M stored listings). Writes bench/results/latest.json, latest.md and
latency_throughput.png. ``--quick`` (or QUICK=1) is the short version for CI (every part
smaller, the pretrained model at 64 px; about 5-8 minutes on 2 shared cores, most of it fixed
costs: TensorFlow start-up and tracing).
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, make_payloads, pin_version, run_json, run_section, say
from bench.serving import bench_server, run_bound, server_specs
from common.files import atomic_write_text
from harness.models import newest_servable

PARTS = ("pipeline", "memory", "bound", "servers", "pretrained", "features", "comparables", "comparables_cost")
SCRATCH_PARTS = {"bound", "servers", "comparables_cost"}  # the parts that need the model of --model-dir


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
    pretrained_rows: int  # the listings the bench trains its pretrained model on, when it has to
    pretrained_image_size: int
    pretrained_levels: tuple[int, ...]
    paired_rounds: int  # bench/paired.py: alternating blocks of bound calls and requests
    paired_block: int
    feature_photos: int
    feature_image_size: int
    comparables_sizes: tuple[str, ...]  # stored listings, ROWS or ROWSxDIM (bench/comparables.py)
    comparables_queries: int  # queries for recall against exact search
    comparables_latency_queries: int  # single queries timed per search
    comparables_ef_search: tuple[int, ...]  # the HNSW efSearch values swept (the default among them)
    comparables_cost_rows: int  # listings of the synthetic index served (bench/comparables_cost.py)
    comparables_cost_rounds: int


# Each field: (full run, quick run).
_PROFILES: dict[str, tuple[Any, Any]] = {
    "payloads": (64, 32),
    "bound_calls": (300, 100),
    "bound_batch_calls": (30, 8),
    "pipeline_rows": (2048, 512),
    "pipeline_repeats": (5, 3),
    "memory_n": (2000, 300),
    "levels": ((1, 8, 32, 64), (1, 8, 32, 64)),
    "duration_s": (15.0, 3.0),
    "warmup_s": (3.0, 1.0),
    "max_window_s": (60.0, 15.0),
    "min_samples": (50, 20),
    "servers": (
        ("batched", "unbatched", "batched_wait", "batched_default_answer", "naive", "naive_signature"),
        ("batched", "unbatched", "naive"),
    ),
    "naive_levels": ((1, 8, 32, 64), (1, 32)),
    "pretrained_rows": (300, 200),
    "pretrained_image_size": (224, 64),
    "pretrained_levels": ((1, 32), (1, 32)),
    "paired_rounds": (30, 8),
    "paired_block": (10, 10),
    "feature_photos": (384, 64),
    "feature_image_size": (224, 224),
    "comparables_sizes": (("20000", "50000", "200000", "2000000", "200000x192"), ("2000", "20000")),
    "comparables_queries": (500, 50),
    "comparables_latency_queries": (300, 30),
    "comparables_ef_search": ((32, 64, 128, 256), (32, 64)),
    "comparables_cost_rows": (200_000, 20_000),
    "comparables_cost_rounds": (20, 3),
}
FULL = Profile(**{name: values[0] for name, values in _PROFILES.items()})
QUICK = Profile(**{name: values[1] for name, values in _PROFILES.items()})


def model_info(model_dir: Path, version: Path | None) -> dict[str, Any]:
    """The scratch model's folder, version, photo encoder and image size (from its card)."""
    if version is None:
        return {"dir": str(model_dir), "version": None}
    card = json.loads((version / "model_card.json").read_text())
    model = card.get("config", {}).get("model", {})
    return {
        "dir": str(model_dir),
        "version": version.name,
        "encoder": model.get("image_encoder", "scratch"),
        "image_size": model.get("image_size"),
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
        default=",".join(PARTS),
        help="comma-separated parts to run: " + ", ".join(PARTS),
    )
    p.add_argument(
        "--servers",
        default=None,
        help="comma-separated servers (" + ", ".join(server_specs(Path())) + "); default: the mode's list",
    )
    p.add_argument(
        "--pretrained-model-dir",
        type=Path,
        default=None,
        help="folder of versions of a model with the pretrained photo encoder; when it holds none (or is not "
        "given) the bench trains a small one into it (default models/bench-pretrained/<encoder>-<size>px), reused later",
    )
    return p.parse_args(argv)


def refusal(a: argparse.Namespace, parts: set[str], chosen: list[str]) -> str | None:
    """Why the run cannot start (a one-line error), or None."""
    known = set(server_specs(a.model_dir))
    if not parts <= set(PARTS) or not set(chosen) <= known:
        return f"error: --only takes {','.join(PARTS)} and --servers {','.join(sorted(known))}"
    if parts & SCRATCH_PARTS and newest_servable(a.model_dir) is None:
        return f"error: no model version under {a.model_dir}: run `make train` first"
    data_table = ROOT / "data/synthetic/items.csv"
    if "pipeline" in parts and not data_table.exists():
        return f"error: {data_table} is missing: run `make train` first"
    return None


def run_pipeline(profile: Profile) -> dict[str, Any]:
    args = ["-m", "bench.pipeline", "--rows", str(profile.pipeline_rows), "--repeats", str(profile.pipeline_repeats)]
    return run_json(args, timeout=1800)


def run_memory(profile: Profile) -> dict[str, Any]:
    from bench.memory import measure

    return measure(profile.memory_n)


def run_servers(profile: Profile, chosen: list[str], model_dir: Path, payloads: Path, logs: Path) -> dict[str, Any]:
    specs = server_specs(model_dir)
    servers: dict[str, Any] = {}
    for key in chosen:
        run_section(servers, key, lambda key=key: bench_server(specs[key], profile, payloads, logs))
    servers.pop("section_seconds", None)
    return servers


def run_parts(
    results: dict[str, Any], profile: Profile, a: argparse.Namespace, chosen: list[str], version: Path | None
) -> None:
    """Every chosen part, each recorded in ``results`` (a failed part as its error)."""
    from bench import comparables, comparables_cost, features, pretrained

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        sections = {
            "pipeline": lambda: run_pipeline(profile),
            "memory": lambda: run_memory(profile),
            "pretrained": lambda: pretrained.measure(profile, a.pretrained_model_dir, work),
            "features": lambda: features.run(profile),
            "comparables": lambda: comparables.run(profile),
        }
        parts = set(a.only.split(","))
        if parts & SCRATCH_PARTS and version is not None:
            say(f"payloads: generating {profile.payloads} synthetic listings as /v1/predict bodies")
            payloads = make_payloads(version, profile.payloads, work)
            # Every server serves this very version, even if `make train` exports a newer one meanwhile.
            pinned = pin_version(version, work / "models")
            sections["bound"] = lambda: run_bound(profile, version, payloads)
            sections["servers"] = lambda: run_servers(profile, chosen, pinned, payloads, work / "logs")
            sections["comparables_cost"] = lambda: comparables_cost.run(profile, version, work)
        for name in PARTS:
            if name in parts:
                run_section(results, name, sections[name])


def write_results(results: dict[str, Any], out: Path) -> None:
    """latest.json, latest.md and the plot; the targets on stderr."""
    from bench.encoders import evaluate_encoders
    from bench.report import evaluate_targets, write_markdown, write_plot

    results["targets"] = evaluate_targets(results)
    evaluate_encoders(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "latest.json", json.dumps(results, indent=2) + "\n")
    write_markdown(results, out / "latest.md")
    plot = write_plot(results, out / "latency_throughput.png")
    say(
        f"wrote {out / 'latest.json'}, {out / 'latest.md'}"
        + (f", {plot}" if plot else "")
        + f" in {results['seconds'] / 60:.1f} min"
    )
    for target in results["targets"]:
        verdict = "PASS" if target["pass"] else "FAIL" if target["pass"] is False else "n/a "
        say(f"target {verdict}: {target['name']}: {target['measured']}")
    for target in results["encoder_targets"]:
        say(f"{target['encoder']}: {target['verdict']}: {target['name']}: {target['measured']}")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    profile = QUICK if a.quick else FULL
    a.model_dir = a.model_dir.resolve()
    parts = set(a.only.split(","))
    chosen = a.servers.split(",") if a.servers else list(profile.servers)
    error = refusal(a, parts, chosen)
    if error:
        print(error, file=sys.stderr)
        return 2
    version = newest_servable(a.model_dir)
    started = time.monotonic()
    results: dict[str, Any] = {
        "mode": "quick" if a.quick else "full",
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "model": model_info(a.model_dir, version),
        "profile": asdict(profile),
    }
    say(
        f"{results['mode']} run on {results['machine']['cores']} cores ({results['machine']['cpu']}), "
        f"load average {results['machine']['load_average_start'][0]:.1f}; model {version}"
    )
    run_parts(results, profile, a, chosen, version)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["seconds"] = round(time.monotonic() - started, 1)
    write_results(results, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
