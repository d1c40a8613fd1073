"""The service's own cost at one client, measured against the bound in the same minutes.

``python -m bench.paired --url URL --model VERSION --payloads FILE`` loads the SavedModel in this
process (the bound, as bench/bound.py calls it) and is also one closed-loop client of the running
service; it alternates short blocks, ``--block`` bound calls then ``--block`` requests, for
``--rounds`` rounds, and prints one JSON line: the p50 (and p90, p99) of every bound call and of
every answer, their difference, and each round's own difference.

Why in turns: on these shared machines the same model call runs 20% faster or slower from one
minute to the next (measured: the bound's batch-1 p50 at 18.9, 23.1 and 24.2 ms in three runs
of the same command a minute apart), which is more than the few milliseconds the service adds.
A bound measured before the server starts and a service measured a minute later compare two
machines; blocks of a second or so each, interleaved, compare the same one. Only one of the two
works at a time (the bound waits while the request is in flight, and the service is idle while
the bound runs), so neither steals the other's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

import common.quiet_tf  # noqa: F401  (an entry point: no native TensorFlow start-up lines)
from bench.bound import raw_rows, signature_call, warm_up
from bench.common import load_payloads, percentiles
from bench.load import post


async def _post(client: aiohttp.ClientSession, path: str, body: bytes) -> float:
    """One request's latency in seconds; anything but a 200 stops the run."""
    started = time.perf_counter()
    status = await post(client, path, body)
    if status != 200:
        raise RuntimeError(f"the service answered {status}")
    return time.perf_counter() - started


async def run(a: argparse.Namespace) -> dict[str, Any]:
    inputs, bodies = load_payloads(a.payloads)
    rows = raw_rows(inputs, bodies)
    encoded = [json.dumps(b).encode() for b in bodies]
    call, _ = signature_call(a.model, inputs)
    warm_up(call, rows)
    bound: list[float] = []
    served: list[float] = []
    rounds: list[dict[str, float]] = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(a.url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:
        for i in range(20):  # the service's warm-up: a connection, and its first answers
            await _post(client, a.path, encoded[i % len(encoded)])
        n = 0
        for _ in range(a.rounds):
            b, s = [], []
            for _ in range(a.block):
                started = time.perf_counter()
                call([rows[n % len(rows)]])
                b.append(time.perf_counter() - started)
                n += 1
            for _ in range(a.block):
                s.append(await _post(client, a.path, encoded[n % len(encoded)]))
                n += 1
            bound += b
            served += s
            rounds.append({"bound_p50_ms": statistics.median(b) * 1000, "service_p50_ms": statistics.median(s) * 1000})
    bound_ms, served_ms = percentiles(bound), percentiles(served)
    gaps = [r["service_p50_ms"] - r["bound_p50_ms"] for r in rounds]
    return {
        "rounds": a.rounds,
        "block": a.block,
        "bound_ms": bound_ms,
        "service_ms": served_ms,
        "gap_p50_ms": served_ms["p50"] - bound_ms["p50"],
        "round_gaps_ms": [round(g, 2) for g in gaps],
        "round_gap_median_ms": statistics.median(gaps),
        "per_round": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--path", default="/v1/predict?explain=false&comparables=0")
    p.add_argument("--model", required=True, type=Path, help="the version folder the service serves")
    p.add_argument("--payloads", required=True, type=Path)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--block", type=int, default=10, help="bound calls, then requests, per round")
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(run(a))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
