"""Helpers shared by the benchmark's parts: progress lines, percentiles, request payloads and
child processes (the servers themselves: harness/server.py).

Also the small pieces the report's parts share: ``dig`` (a value deep in the results, or None),
``target`` (one target's verdict), ``fmt`` (a figure or "-"), ``run_section`` (one part, its
failure recorded), ``pin_version`` and ``server_memory``.

Nothing here imports TensorFlow, so the orchestrator and the load generator stay light.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.server import ROOT, child_env

__all__ = [
    "ROOT",
    "child_env",
    "dig",
    "fmt",
    "load_payloads",
    "make_payloads",
    "percentiles",
    "pin_version",
    "run_json",
    "run_section",
    "say",
    "server_memory",
    "target",
]
_T0 = time.monotonic()


def say(message: str) -> None:
    """One progress line on stderr, with the time since the benchmark started."""
    elapsed = time.monotonic() - _T0
    print(f"[bench {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {message}", file=sys.stderr, flush=True)


def percentiles(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max of durations given in seconds, in milliseconds (nearest rank)."""
    if not values_s:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "mean": math.nan, "max": math.nan}
    ordered = sorted(values_s)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000.0

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "mean": sum(ordered) / len(ordered) * 1000.0,
        "max": ordered[-1] * 1000.0,
    }


def make_payloads(version_dir: Path, n: int, out: Path, seed: int = 12345) -> Path:
    """Write ``n`` /v1/predict JSON bodies (fields from the model card, photo as base64) to
    ``out/payloads.json``, built from freshly generated synthetic listings."""
    from training.data.synthetic import generate

    card = json.loads((version_dir / "model_card.json").read_text())
    table = generate(n, seed=seed, out=out / "items", workers=1, quiet=True)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    bodies = []
    for row in rows:
        body: dict[str, Any] = {}
        for spec in card["inputs"]:
            name, role = spec["name"], spec["role"]
            if name not in row:
                raise SystemExit(
                    f"error: the model's input {name!r} is not a column of the synthetic data set; "
                    "the benchmark needs a model trained on it (make train)"
                )
            if role == "image":
                body[name] = base64.b64encode((table.parent / row[name]).read_bytes()).decode()
            elif role == "numeric":
                body[name] = float(row[name])
            else:
                body[name] = row[name]
        bodies.append(body)
    path = out / "payloads.json"
    path.write_text(json.dumps({"card": {"inputs": card["inputs"]}, "bodies": bodies}))
    return path


def load_payloads(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(card inputs, request bodies) from make_payloads' file."""
    data = json.loads(path.read_text())
    return data["card"]["inputs"], data["bodies"]


def run_json(
    args: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Run ``python -m ...`` in a child process; its last stdout line is a JSON result.
    Its stderr (progress) passes through."""
    proc = subprocess.run(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, timeout=timeout, env=child_env(env), cwd=cwd or ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited with {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


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


def pin_version(version: Path, folder: Path) -> Path:
    """``folder`` holding only a link to ``version``: a server on it serves this very version,
    even if a newer one is exported beside it meanwhile."""
    folder.mkdir(parents=True)
    (folder / version.name).symlink_to(version, target_is_directory=True)
    return folder


def server_memory(pid: int) -> dict[str, float]:
    """The kernel's figures for a process, in MiB: its resident memory now and its peak
    (VmRSS, VmHWM of /proc/PID/status: the peak is the kernel's own, nothing is sampled).
    Empty where /proc is not there."""
    names = {"VmRSS": "rss_mib", "VmHWM": "peak_rss_mib"}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in names:
            found[names[key]] = int(value.split()[0]) / 1024.0  # kB
    return found


def dig(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...``, or None where a level is missing (or not a dict)."""
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def fmt(x: Any, spec: str = ".1f") -> str:
    """A figure for a table: "-" for a missing or NaN one."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def target(
    name: str, value: float | None, threshold: float, higher_is_better: bool, text: str, unit: str = ""
) -> dict[str, Any]:
    """One target: its measured value, the threshold and pass (None: not measured)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"name": name, "measured": "not measured", "value": None, "threshold": threshold, "pass": None}
    ok = value >= threshold if higher_is_better else value <= threshold
    return {
        "name": name,
        "measured": text or f"{value:.2f}{unit}",
        "value": value,
        "threshold": threshold,
        "pass": bool(ok),
    }


def one_client_gap(service: Any, bound_p50: float | None) -> tuple[float | None, str]:
    """(service p50 - bound batch-1 p50 in ms, how it was measured) at one client. From
    bench/paired.py (the two in turns, the same minutes) when the server had that run; else the
    separate runs: the one-client level against the bound's own run."""
    paired = dig(service, "paired")
    if isinstance(paired, dict) and "gap_p50_ms" in paired:
        s, b = paired["service_ms"]["p50"], paired["bound_ms"]["p50"]
        n = paired["rounds"] * paired["block"]
        text = f"{paired['gap_p50_ms']:+.1f} ms ({s:.1f} vs {b:.1f} ms, in turns: {n} requests and {n} bound calls)"
        separate = dig(service, "levels", "1", "latency_ms", "p50")
        if separate is not None and bound_p50 is not None:
            text += f"; separate runs: {separate - bound_p50:+.1f} ms ({separate:.1f} vs {bound_p50:.1f} ms)"
        return paired["gap_p50_ms"], text
    p50 = dig(service, "levels", "1", "latency_ms", "p50")
    if p50 is None or bound_p50 is None:
        return None, ""
    return p50 - bound_p50, f"{p50 - bound_p50:+.1f} ms ({p50:.1f} vs {bound_p50:.1f} ms, separate runs)"
