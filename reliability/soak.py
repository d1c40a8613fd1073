"""`make soak`: the service under sustained mixed traffic, with model versions dropped in on the way.

32 concurrent clients (each its own keep-alive connection) send valid and invalid requests
(every route; photos of every kind, the refused ones of the bad-image corpus, malformed and
oversized JSON, wrong content types, huge batches; and, from reliability/shapes.py, listings with
each kind of missing input, several photos in JSON and multipart, one bad photo among several,
nothing given, batches mixing them) to a real uvicorn for SOAK_SECONDS (300 by default). At 35% of the run a new good version is copied into MODEL_DIR (the way the exporter
writes it: a hidden folder, then a rename); at 65% a broken one (a truncated saved_model.pb).

It passes when: no answer is a 5xx; no connection is dropped (a transport error on the client);
every answer has the status its request calls for (and, where the request says, the `missing`
list of its price or the `loc` of its refusal); the good version is taken with no failed
request; the broken one is refused while the service keeps serving; the server's resident memory
grows by less than 10% from minute 1 (or 20% of a shorter run) to the end.

    python -m reliability.soak [--seconds 300] [--clients 32] [--model-dir models/price] [--out FILE]

Traffic goes to 127.0.0.1 only; every loop stops at the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from common.files import atomic_write_text, newest
from harness.models import install_version, truncate_savedmodel
from reliability.mix import Kind, build_mix
from reliability.server import ROOT, ServiceProcess, model_dir_or_tiny
from reliability.shapes import random_kinds, shape_kinds

SHAPES_WEIGHT = 30.0  # the fixed shapes' share of the mix (the rest of it weighs about 110)
RANDOM_SHAPES, RANDOM_SHAPES_WEIGHT = 120, 10.0  # random combinations of missing inputs and photos

RELOAD_INTERVAL_S = 2


@dataclass
class Stats:
    """What the clients saw."""

    requests: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    dropped: int = 0
    drop_errors: Counter = field(default_factory=Counter)
    unexpected: int = 0
    unexpected_examples: list[str] = field(default_factory=list)
    versions: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # valid predictions, seconds

    @property
    def failures(self) -> int:
        return self.dropped + self.unexpected + sum(v for k, v in self.by_status.items() if k >= 500)


async def client_loop(index: int, url: str, kinds: list[Kind], deadline: float, stats: Stats) -> None:
    rng = random.Random(index)
    weights = [k.weight for k in kinds]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            started = time.monotonic()
            try:
                response = await client.request(kind.method, kind.path, content=kind.content, headers=kind.headers)
            except httpx.TransportError as exc:
                stats.requests += 1
                stats.dropped += 1
                stats.drop_errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                continue
            elapsed = time.monotonic() - started
            stats.requests += 1
            stats.by_status[response.status_code] += 1
            stats.by_kind[kind.name] += 1
            problem = kind.check(response.status_code, response.content)
            if problem:
                stats.unexpected += 1
                if len(stats.unexpected_examples) < 20:
                    stats.unexpected_examples.append(f"{kind.name}: {problem}; {response.text[:200]}")
            elif kind.valid and kind.path.startswith("/v1/predict"):
                stats.latencies.append(elapsed)
                stats.versions[response.json().get("model_version", "?")] += 1


async def wait_for(condition, timeout: float) -> float | None:
    """Seconds until ``await condition()`` is true, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await condition():
            return round(time.monotonic() - started, 2)
        await asyncio.sleep(0.2)
    return None


async def soak(
    model_dir: Path, seconds: float, clients: int, work: Path, warmup: float = 30.0, log=print
) -> dict[str, Any]:
    """Run the soak (see the module docstring); ``warmup`` seconds of the same traffic come first
    (their answers count too) so that the memory baseline is not taken while pools still fill."""
    source = newest(model_dir)
    served = work / "models"
    served.mkdir(parents=True)
    install_version(source, served, 1, tag="soak")
    service = ServiceProcess(served, work / "service.log", RELOAD_INTERVAL_S=RELOAD_INTERVAL_S, LOG_LEVEL="INFO")
    service.start()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as monitor:
            card = (await monitor.get("/v1/model")).json()
            kinds = mix_of(card)
            shape_names = {k.name for k in kinds} - {k.name for k in build_mix(card)}
            stats = Stats()
            baseline_at = min(60.0, 0.2 * seconds)
            log(f"soak: {clients} clients, {warmup:.0f} s of warm-up then {seconds:.0f} s on {service.url} "
                f"({len(kinds)} kinds of request)")  # fmt: skip
            warm = [client_loop(i, service.url, kinds, time.monotonic() + warmup, stats) for i in range(clients)]
            await asyncio.gather(*warm)
            start = time.monotonic()
            deadline = start + seconds
            rss: list[tuple[float, int]] = []
            events: dict[str, Any] = {}

            async def version() -> str:
                return (await monitor.get("/readyz")).json().get("model_version", "")

            async def refused() -> bool:
                text = (await monitor.get("/metrics")).text
                return 'model_loads_total{result="refused"} 1.0' in text

            async def sample_rss() -> None:
                while time.monotonic() < deadline:
                    rss.append((round(time.monotonic() - start, 1), service.rss_bytes()))
                    await asyncio.sleep(2)

            async def swaps() -> None:
                await asyncio.sleep(max(0.0, start + 0.35 * seconds - time.monotonic()))
                before = stats.failures
                t0 = time.monotonic() - start
                await asyncio.to_thread(install_version, source, served, 2, tag="soak")
                took = await wait_for(lambda: _is(version, "2"), 120)
                await asyncio.sleep(3)  # requests in flight across the swap finish
                events["good_version"] = {
                    "copied_at_s": round(t0, 1),
                    "taken_after_s": took,
                    "failed_requests_during_swap": stats.failures - before,
                }
                log(f"  t={t0:.0f}s good version 2 copied in; serving it after {took} s")
                await asyncio.sleep(max(0.0, start + 0.65 * seconds - time.monotonic()))
                before = stats.failures
                t0 = time.monotonic() - start
                await asyncio.to_thread(install_version, source, served, 3, truncate_savedmodel, "soak")
                took = await wait_for(refused, 120)
                await asyncio.sleep(3)
                still = await version()
                events["broken_version"] = {
                    "dropped_at_s": round(t0, 1),
                    "refused_after_s": took,
                    "still_serving_version": still,
                    "failed_requests_meanwhile": stats.failures - before,
                }
                log(f"  t={t0:.0f}s broken version 3 dropped in; refused after {took} s, still serving {still}")

            tasks = [asyncio.create_task(client_loop(i, service.url, kinds, deadline, stats)) for i in range(clients)]
            await asyncio.gather(sample_rss(), swaps(), *tasks)
            elapsed = time.monotonic() - start + warmup
            final_version = await version()
            final_refused = await refused()
        rss_end = service.rss_bytes()
    finally:
        service.stop()
    log_text = (work / "service.log").read_text(errors="replace")
    latencies = sorted(stats.latencies)
    five_xx = sum(v for k, v in stats.by_status.items() if k >= 500)

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else 0.0

    good = events.get("good_version", {})
    broken = events.get("broken_version", {})
    result = {
        "seconds": round(elapsed, 1),
        "warmup_seconds": warmup,
        "clients": clients,
        "requests": stats.requests,
        "requests_per_s": round(stats.requests / elapsed, 1),
        "valid_predictions": len(latencies),
        "latency_ms_valid_predictions": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0)},
        "by_status": {str(k): v for k, v in sorted(stats.by_status.items())},
        "kinds_of_request": len(kinds),
        "shapes": {
            "kinds": len(shape_names),
            "requests": sum(v for k, v in stats.by_kind.items() if k in shape_names),
            "card_optional_inputs": bool(card.get("served", {}).get("optional_inputs")),
            "max_photos": card.get("served", {}).get("max_photos", {}),
        },
        "five_xx": five_xx,
        "dropped_connections": stats.dropped,
        "drop_errors": dict(stats.drop_errors),
        "unexpected_statuses": stats.unexpected,
        "unexpected_examples": stats.unexpected_examples,
        "answers_by_model_version": dict(stats.versions),
        "rss_mb": rss_summary(rss, rss_end, baseline_at),
        "good_version": good,
        "broken_version": broken,
        "final_version": final_version,
        "broken_version_refused": final_refused and "event=model_refused version=3" in log_text,
        "unhandled_errors_logged": log_text.count("event=unhandled_error"),
    }
    result["passed"] = passed(result)
    return result


def mix_of(card: dict[str, Any]) -> list[Kind]:
    """The soak's traffic: reliability/mix.py's, the fixed shapes and random ones (seeded)."""
    shapes = random_kinds(card, random.Random(0), RANDOM_SHAPES)
    scale = RANDOM_SHAPES_WEIGHT / max(1, len(shapes))
    return [
        *build_mix(card),
        *shape_kinds(card, SHAPES_WEIGHT),
        *(Kind(k.name, k.weight * scale, k.method, k.path, k.expected, k.content, k.headers, k.missing, k.loc)
          for k in shapes),
    ]  # fmt: skip


def rss_summary(rss: list[tuple[float, int]], rss_end: int, baseline_at: float) -> dict[str, Any]:
    """The server's resident memory: at the sample nearest ``baseline_at``, at the end, its growth."""
    base = min(rss, key=lambda s: abs(s[0] - baseline_at))[1] if rss else 0
    growth = (rss_end - base) / base if base else 0.0
    return {
        "baseline_at_s": baseline_at,
        "baseline": round(base / 2**20, 1),
        "end": round(rss_end / 2**20, 1),
        "max": round(max((r for _, r in rss), default=0) / 2**20, 1),
        "growth_pct": round(100 * growth, 2),
        "timeline": [(t, round(r / 2**20, 1)) for t, r in rss[:: max(1, len(rss) // 60)]],
    }


def passed(result: dict[str, Any]) -> bool:
    """The pass conditions of the module docstring."""
    good, broken = result["good_version"], result["broken_version"]
    return bool(
        result["requests"] > 0
        and result["five_xx"] == 0
        and result["dropped_connections"] == 0
        and result["unexpected_statuses"] == 0
        and result["rss_mb"]["growth_pct"] < 10.0
        and good.get("taken_after_s") is not None
        and good.get("failed_requests_during_swap") == 0
        and broken.get("refused_after_s") is not None
        and broken.get("still_serving_version") == "2"
        and broken.get("failed_requests_meanwhile") == 0
        and result["final_version"] == "2"
        and result["broken_version_refused"]
        and result["unhandled_errors_logged"] == 0
    )


async def _is(getter, value: str) -> bool:
    return await getter() == value


def summary(result: dict[str, Any]) -> str:
    rss = result["rss_mb"]
    good, broken = result["good_version"], result["broken_version"]
    return "\n".join(
        [
            f"soak: {result['requests']} requests in {result['seconds']} s from {result['clients']} clients "
            f"({result['requests_per_s']}/s, {result['kinds_of_request']} kinds, statuses {result['by_status']})",
            f"  new shapes (missing inputs, several photos): {result['shapes']['requests']} requests of "
            f"{result['shapes']['kinds']} kinds; the card's optional inputs {result['shapes']['card_optional_inputs']}, "
            f"max photos {result['shapes']['max_photos']}",
            f"  5xx: {result['five_xx']}   dropped connections: {result['dropped_connections']}   "
            f"unexpected statuses: {result['unexpected_statuses']}   unhandled errors logged: {result['unhandled_errors_logged']}",
            f"  valid predictions: {result['valid_predictions']}, latency p50 {result['latency_ms_valid_predictions']['p50']} ms, "
            f"p99 {result['latency_ms_valid_predictions']['p99']} ms; answers by version {result['answers_by_model_version']}",
            f"  RSS: {rss['baseline']} MB at {rss['baseline_at_s']:.0f} s (after the warm-up) -> {rss['end']} MB at the end "
            f"({rss['growth_pct']:+.2f}%, max {rss['max']} MB)",
            f"  good version 2: taken {good.get('taken_after_s')} s after the copy, "
            f"{good.get('failed_requests_during_swap')} failed requests",
            f"  broken version 3: refused after {broken.get('refused_after_s')} s, still serving version "
            f"{broken.get('still_serving_version')}, {broken.get('failed_requests_meanwhile')} failed requests",
            "soak: PASSED" if result["passed"] else "soak: FAILED",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of traffic before the measured run")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "price")
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "soak.json")
    args = parser.parse_args(argv)
    model_dir = model_dir_or_tiny(args.model_dir)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    result = asyncio.run(soak(model_dir, args.seconds, args.clients, work, args.warmup))
    result["model_dir"] = str(model_dir)
    print(summary(result))
    if result["unexpected_examples"] or result["drop_errors"]:
        print("  examples:", *result["unexpected_examples"][:5], *list(result["drop_errors"])[:5], sep="\n    ")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if result["passed"]:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"service log and models kept in {work}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
