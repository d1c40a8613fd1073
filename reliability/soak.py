"""`make soak`: the service under sustained mixed traffic, with model versions dropped in on the way.

32 concurrent clients (each its own keep-alive connection) send valid and invalid requests
(every route; photos of every kind, the refused ones of the bad-image corpus, malformed and
oversized JSON, wrong content types, huge batches) to a real uvicorn for SOAK_SECONDS (300 by
default). At 35% of the run a new good version is copied into MODEL_DIR (the way the exporter
writes it: a hidden folder, then a rename); at 65% a broken one (a truncated saved_model.pb).

It passes when: no answer is a 5xx; no connection is dropped (a transport error on the client);
every answer has the status its request calls for; the good version is taken with no failed
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

from reliability.corpus import PRICE, bad_images, encode, photo
from reliability.server import ROOT, ServiceProcess, model_dir_or_tiny

RELOAD_INTERVAL_S = 2


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix, ready to send, and the statuses it may get."""

    name: str
    weight: float
    method: str
    path: str
    expected: frozenset[int]
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.expected == frozenset({200})


def item_from_card(card: dict[str, Any]) -> dict[str, Any]:
    """A valid item for the served model (image left out), from its card."""
    item: dict[str, Any] = {}
    for spec in card["inputs"]:
        role, name = spec["role"], spec["name"]
        if role == "categorical":
            item[name] = (spec.get("examples") or spec.get("vocabulary") or ["unknown"])[0]
        elif role == "numeric":
            low, high = spec.get("min", 0.0), spec.get("max", 1.0)
            item[name] = round((low + high) / 2, 3)
        elif role == "text":
            item[name] = (spec.get("examples") or ["A nice item, barely worn."])[0]
    return item


def build_mix(card: dict[str, Any]) -> list[Kind]:
    """The requests of the soak: about 60% valid, 40% refused for a known reason."""
    image_names = [s["name"] for s in card["inputs"] if s["role"] == "image"]
    base = item_from_card(card)

    def with_image(data: bytes) -> dict[str, Any]:
        import base64

        return {**base, **{name: base64.b64encode(data).decode() for name in image_names}}

    def as_json(body: Any) -> tuple[bytes, dict[str, str]]:
        return json.dumps(body).encode(), {"content-type": "application/json"}

    def as_form(
        data: bytes, filename: str = "photo.jpg", media_type: str = "image/jpeg"
    ) -> tuple[bytes, dict[str, str]]:
        request = httpx.Request(
            "POST",
            "http://127.0.0.1/",
            data={k: str(v) for k, v in base.items()},
            files={name: (filename, data, media_type) for name in image_names},
        )
        return request.read(), {"content-type": request.headers["content-type"]}

    ok = frozenset({200})
    kinds: list[Kind] = []

    def add(name: str, weight: float, method: str, path: str, expected: frozenset[int], body=None) -> None:
        content, headers = body if body is not None else (None, {})
        kinds.append(Kind(name, weight, method, path, expected, content, headers))

    photos = [encode(photo((96, 96), seed=s, block=4), "JPEG", quality=85) for s in range(8)]
    for index, data in enumerate(photos):
        add(f"predict json jpeg #{index}", 20 / len(photos), "POST", "/v1/predict", ok, as_json(with_image(data)))
        add(f"predict upload jpeg #{index}", 10 / len(photos), "POST", "/v1/predict/upload", ok, as_form(data))
    unusual = [e for e in bad_images() if e.status == PRICE]
    refused = [e for e in bad_images() if e.status != PRICE]
    for entry in unusual:
        add(f"predict json {entry.name}", 6 / len(unusual), "POST", "/v1/predict", ok, as_json(with_image(entry.data)))
        add(f"predict upload {entry.name}", 3 / len(unusual), "POST", "/v1/predict/upload", ok,
            as_form(entry.data, entry.filename, entry.media_type))  # fmt: skip
    batch = {"items": [with_image(photos[i % len(photos)]) for i in range(8)]}
    add("batch of 8", 4, "POST", "/v1/predict/batch", ok, as_json(batch))
    for path, weight in (
        ("/v1/model", 3),
        ("/readyz", 2),
        ("/healthz", 2),
        ("/metrics", 1),
        ("/", 1),
        ("/openapi.json", 1),
    ):
        add(f"GET {path}", weight, "GET", path, ok)

    for entry in refused:
        status = frozenset({entry.status})
        add(
            f"refused json {entry.name}",
            8 / len(refused),
            "POST",
            "/v1/predict",
            status,
            as_json(with_image(entry.data)),
        )
        add(f"refused upload {entry.name}", 4 / len(refused), "POST", "/v1/predict/upload", status,
            as_form(entry.data, entry.filename, entry.media_type))  # fmt: skip
    bad = frozenset({422})
    good = with_image(photos[0])
    numeric = next((s["name"] for s in card["inputs"] if s["role"] == "numeric"), None)
    first = card["inputs"][0]["name"]
    add("invalid JSON", 3, "POST", "/v1/predict", bad, (b'{"brand": "zara", ', {"content-type": "application/json"}))
    add("missing field", 3, "POST", "/v1/predict", bad, as_json({k: v for k, v in good.items() if k != first}))
    add("unknown field", 2, "POST", "/v1/predict", bad, as_json({**good, "colour2": "red"}))
    if numeric:
        add("number out of range", 2, "POST", "/v1/predict", bad, as_json({**good, numeric: 1e12}))
        add("boolean for a number", 1, "POST", "/v1/predict", bad, as_json({**good, numeric: True}))
        nan = json.dumps({**good, numeric: float("nan")}).encode()
        add("NaN", 1, "POST", "/v1/predict", bad, (nan, {"content-type": "application/json"}))
    plain = (json.dumps(good).encode(), {"content-type": "text/plain"})
    add("wrong content type", 3, "POST", "/v1/predict", frozenset({415}), plain)
    add("JSON to upload", 1, "POST", "/v1/predict/upload", frozenset({415}), as_json(good))
    add("empty batch", 1, "POST", "/v1/predict/batch", bad, as_json({"items": []}))
    add("batch of 10,000", 0.3, "POST", "/v1/predict/batch", bad, as_json({"items": [{"x": 1}] * 10_000}))
    nested = ("[" * 20_000 + "]" * 20_000).encode()
    add("deeply nested JSON", 1, "POST", "/v1/predict", bad, (nested, {"content-type": "application/json"}))
    fields = ("{" + ",".join(f'"k{i}":0' for i in range(100_000)) + "}").encode()
    add("100,000 fields", 0.3, "POST", "/v1/predict", bad, (fields, {"content-type": "application/json"}))
    long_texts = {s["name"]: "x" * 1_000_000 for s in card["inputs"] if s["role"] == "text"}
    add("1 MB texts", 0.5, "POST", "/v1/predict", bad, as_json({**good, **long_texts}))
    add("unknown route", 1, "GET", "/v2/predict", frozenset({404}))
    add("wrong method", 1, "DELETE", "/v1/predict", frozenset({405}))
    return kinds


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
            if response.status_code not in kind.expected:
                stats.unexpected += 1
                if len(stats.unexpected_examples) < 20:
                    stats.unexpected_examples.append(f"{kind.name}: {response.status_code} {response.text[:200]}")
            elif kind.valid and kind.path.startswith("/v1/predict"):
                stats.latencies.append(elapsed)
                stats.versions[response.json().get("model_version", "?")] += 1


def install_version(source: Path, model_dir: Path, version: int, broken: bool = False) -> None:
    """Copy a version the way the exporter writes one: a hidden folder, then one rename."""
    work = model_dir / f".tmp-{version}-soak"
    shutil.copytree(source, work)
    if broken:  # an interrupted copy: saved_model.pb cut short
        pb = work / "saved_model.pb"
        pb.write_bytes(pb.read_bytes()[:200])
    work.rename(model_dir / str(version))


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
    source = max((p for p in model_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    served = work / "models"
    served.mkdir(parents=True)
    install_version(source, served, 1)
    service = ServiceProcess(served, work / "service.log", RELOAD_INTERVAL_S=RELOAD_INTERVAL_S, LOG_LEVEL="INFO")
    service.start()
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as monitor:
            card = (await monitor.get("/v1/model")).json()
            kinds = build_mix(card)
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
                await asyncio.to_thread(install_version, source, served, 2)
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
                await asyncio.to_thread(install_version, source, served, 3, True)
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
    base = min(rss, key=lambda s: abs(s[0] - baseline_at))[1] if rss else 0
    growth = (rss_end - base) / base if base else 0.0
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
        "five_xx": five_xx,
        "dropped_connections": stats.dropped,
        "drop_errors": dict(stats.drop_errors),
        "unexpected_statuses": stats.unexpected,
        "unexpected_examples": stats.unexpected_examples,
        "answers_by_model_version": dict(stats.versions),
        "rss_mb": {
            "baseline_at_s": baseline_at,
            "baseline": round(base / 2**20, 1),
            "end": round(rss_end / 2**20, 1),
            "max": round(max((r for _, r in rss), default=0) / 2**20, 1),
            "growth_pct": round(100 * growth, 2),
            "timeline": [(t, round(r / 2**20, 1)) for t, r in rss[:: max(1, len(rss) // 60)]],
        },
        "good_version": good,
        "broken_version": broken,
        "final_version": final_version,
        "broken_version_refused": final_refused and "event=model_refused version=3" in log_text,
        "unhandled_errors_logged": log_text.count("event=unhandled_error"),
    }
    result["passed"] = bool(
        stats.requests > 0
        and five_xx == 0
        and stats.dropped == 0
        and stats.unexpected == 0
        and growth < 0.10
        and good.get("taken_after_s") is not None
        and good.get("failed_requests_during_swap") == 0
        and broken.get("refused_after_s") is not None
        and broken.get("still_serving_version") == "2"
        and broken.get("failed_requests_meanwhile") == 0
        and final_version == "2"
        and result["broken_version_refused"]
        and result["unhandled_errors_logged"] == 0
    )
    return result


async def _is(getter, value: str) -> bool:
    return await getter() == value


def summary(result: dict[str, Any]) -> str:
    rss = result["rss_mb"]
    good, broken = result["good_version"], result["broken_version"]
    return "\n".join(
        [
            f"soak: {result['requests']} requests in {result['seconds']} s from {result['clients']} clients "
            f"({result['requests_per_s']}/s, {result['kinds_of_request']} kinds, statuses {result['by_status']})",
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
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if result["passed"]:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"service log and models kept in {work}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
