"""Closed-loop HTTP load generator (asyncio + aiohttp), run in its own process.

``python -m bench.load --url URL --payloads FILE --concurrency C --duration S`` keeps C clients
busy: each sends a request, waits for the answer, sends the next (no sleeps). After a warm-up,
it measures a window and prints one JSON line: throughput, latency percentiles of the answers
that came back inside the window, status counts, and, with ``--server-pid``, the server
process's own CPU time over the window (psutil), so the CPU time per served prediction comes
from the server's accounting, not the client's. A slow server gets a longer warm-up (every
client must have had one answer) and window (``--min-samples`` answers, at most ``--max`` s).

aiohttp rather than httpx: on this 2-core machine the client shares the cores with the server,
and httpx spent 2.5 ms of CPU per request at one client and 11 ms at 32 (its connection pool),
aiohttp well under 1 ms, so the client steals far less of the server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import load_payloads, percentiles


@dataclass
class _State:
    bodies: list[bytes]
    sent: int = 0
    completed: int = 0
    measuring: bool = False
    samples: list[tuple[float, float, int | str]] = field(default_factory=list)  # start, end, status


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


async def post(client: aiohttp.ClientSession, path: str, body: bytes) -> int | str:
    """One JSON POST, its answer read whole: the status, or the name of the client error."""
    try:
        async with client.post(path, data=body, headers={"content-type": "application/json"}) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def _client(client: aiohttp.ClientSession, path: str, state: _State) -> None:
    while True:
        body = state.bodies[state.sent % len(state.bodies)]
        state.sent += 1
        started = time.perf_counter()
        status = await post(client, path, body)
        state.completed += 1
        if state.measuring:
            state.samples.append((started, time.perf_counter(), status))


async def _wait_until(condition: Any, cap_s: float) -> None:
    deadline = time.perf_counter() + cap_s
    while not condition() and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)


async def run(
    url: str,
    path: str,
    bodies: list[bytes],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    min_samples: int,
    max_s: float,
    server_pid: int | None,
) -> dict[str, Any]:
    """Warm up for warmup_s and until every client has had an answer; then measure for
    duration_s, longer (up to max_s) until min_samples answers came back. Answers that arrive
    inside the window are counted; requests still in flight at its end are dropped."""
    state = _State(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=max_s + 120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        tasks = [asyncio.create_task(_client(client, path, state)) for _ in range(concurrency)]
        begin = time.perf_counter()
        await _wait_until(
            lambda: time.perf_counter() - begin >= warmup_s and state.completed >= concurrency, max(warmup_s, max_s / 2)
        )
        state.measuring = True
        cpu0, own0, t0 = _cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        await _wait_until(
            lambda: time.perf_counter() - t0 >= duration_s and len(state.samples) >= min_samples, max(duration_s, max_s)
        )
        t1, cpu1, own1 = time.perf_counter(), _cpu_seconds(server_pid), time.process_time()
        state.measuring = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    window = t1 - t0
    done = [(a, b, st) for a, b, st in state.samples if b <= t1]
    statuses = Counter(str(st) for _, _, st in done)
    ok = [b - a for a, b, st in done if st == 200]
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "window_s": round(window, 3),
        "requests": len(done),
        "ok": len(ok),
        "errors": len(done) - len(ok),
        "statuses": dict(statuses),
        "throughput_rps": len(ok) / window if window > 0 else 0.0,
        "latency_ms": percentiles(ok),
        "client_cpu_ms_per_request": (own1 - own0) * 1000.0 / max(1, len(done)),
    }
    if cpu0 is not None and cpu1 is not None:
        result["server_cpu_s"] = cpu1 - cpu0
        result["server_cpu_ms_per_prediction"] = (cpu1 - cpu0) * 1000.0 / max(1, len(ok))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--path", default="/v1/predict")
    p.add_argument("--payloads", required=True, type=Path)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=10.0, help="measured window, seconds (time mode)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before the window, seconds (time mode)")
    p.add_argument("--min-samples", type=int, default=20, help="extend the window until this many answers")
    p.add_argument("--max", type=float, default=120.0, help="longest window (and warm-up), seconds")
    p.add_argument("--server-pid", type=int, default=None, help="read this process's CPU time over the window")
    a = p.parse_args(argv)
    _, bodies = load_payloads(a.payloads)
    encoded = [json.dumps(b).encode() for b in bodies]
    result = asyncio.run(
        run(a.url, a.path, encoded, a.concurrency, a.duration, a.warmup, a.min_samples, a.max, a.server_pid)
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
