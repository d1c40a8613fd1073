"""What the comparables add to one prediction, end to end: the service at one client, with and
without them, in turns, over the model's own index and over the same model with an index of
``--rows`` synthetic listings (200,000 by default: the size the issue's 5 ms budget names).

``python -m bench.comparables_cost --model models/price/2`` copies the version twice into a work
folder: as it is, and with its ``comparables/`` replaced by ``--rows`` clustered synthetic vectors
of the model's own dimension (prices and ids made up, no thumbnails, searched the way
``choose_search`` picks at that size, so HNSW at 200,000), the card's hashes updated. For each it
starts the service (``python -m service``, micro-batching on), sends 20 warm-up requests, then
``--rounds`` rounds of ``--block`` requests with ``?explain=false&comparables=0`` and
``--block`` with ``?explain=false&comparables=5``, one at a time, and prints one JSON line: the
p50/p90/p99 of both, their p50 difference and each round's own. In turns, because on these
shared machines a minute's drift is larger than what is measured (bench/paired.py says why).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.common import dig, load_payloads, make_payloads, percentiles, say, target
from bench.load import post
from common.files import sha256_file
from common.neighbours import Neighbours, choose_search
from harness.server import ServiceProcess

WITHOUT = "/v1/predict?explain=false&comparables=0"
WITH = "/v1/predict?explain=false&comparables=5"


def synthetic_index(version: Path, rows: int, seed: int = 0) -> dict[str, Any]:
    """Replace ``version/comparables`` by ``rows`` synthetic listings; return the new card block."""
    card_path = version / "model_card.json"
    card = json.loads(card_path.read_text())
    block = dict(card["comparables"])
    folder = version / block["folder"]
    stored = np.load(folder / "vectors.npy").astype(np.float32)
    rng = np.random.default_rng(seed)
    centres = stored[rng.choice(len(stored), size=min(1000, len(stored)), replace=False)]
    spread = float(np.std(stored)) * 0.3
    vectors = centres[rng.integers(0, len(centres), rows)] + rng.normal(0, spread, (rows, stored.shape[1]))
    shutil.rmtree(folder)
    folder.mkdir()
    search = choose_search(rows)
    names = Neighbours.build(vectors.astype(np.float32), search, metric=block.get("metric", "l2")).save(folder)
    np.save(folder / "prices.npy", np.exp(rng.normal(3.3, 0.6, rows)), allow_pickle=False)
    fields = {f: [f"{f} {i % 997}" for i in range(rows)] for f in block["fields"]}
    (folder / "listings.json").write_text(json.dumps({"ids": [f"s{i}" for i in range(rows)], "fields": fields}))
    names += ["prices.npy", "listings.json"]
    block.pop("thumbnails", None)
    block.update(
        count=rows,
        search=search,
        files={n: sha256_file(folder / n) for n in names},
    )
    card["comparables"] = block
    card_path.write_text(json.dumps(card, indent=2))
    return block


async def _turns(url: str, bodies: list[bytes], rounds: int, block: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {WITHOUT: [], WITH: []}
    per_round = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:

        async def one(path: str, body: bytes) -> float:
            started = time.perf_counter()
            status = await post(client, path, body)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            return time.perf_counter() - started

        for i in range(20):
            await one(WITH if i % 2 else WITHOUT, bodies[i % len(bodies)])
        n = 0
        for _ in range(rounds):
            got = {}
            for path in (WITHOUT, WITH):
                got[path] = [await one(path, bodies[(n + i) % len(bodies)]) for i in range(block)]
                times[path] += got[path]
            n += block
            per_round.append(1000 * (statistics.median(got[WITH]) - statistics.median(got[WITHOUT])))
    without, with_ = percentiles(times[WITHOUT]), percentiles(times[WITH])
    return {
        "without_ms": without,
        "with_ms": with_,
        "added_p50_ms": with_["p50"] - without["p50"],
        "round_added_ms": per_round,
        "requests": len(times[WITH]) * 2,
    }


def measure(model: Path, rows: int, rounds: int, block: int, work: Path) -> dict[str, Any]:
    payloads = make_payloads(model, 64, work)
    _, bodies = load_payloads(payloads)
    encoded = [json.dumps(b).encode() for b in bodies]
    out: dict[str, Any] = {"model": str(model), "rounds": rounds, "block": block}
    for label, n in (("own", None), ("synthetic", rows)):
        model_dir = work / label / "m"
        shutil.copytree(model, model_dir / "1")
        block_info = json.loads((model_dir / "1" / "model_card.json").read_text())["comparables"]
        if n is not None:
            say(f"comparables cost: an index of {n:,} synthetic listings")
            block_info = synthetic_index(model_dir / "1", n)
        env = {"MODEL_DIR": str(model_dir), "RELOAD_INTERVAL_S": "0", "LOG_LEVEL": "warning"}
        with ServiceProcess(work / label / "server.log", env) as server:
            say(f"comparables cost: {label} index ({block_info['count']:,} listings, {block_info['search']})")
            result = asyncio.run(_turns(server.url, encoded, rounds, block))
        out[label] = {"count": block_info["count"], "search": block_info["search"], "dim": block_info["dim"], **result}
        say(
            f"comparables cost: {label} added_p50_ms={result['added_p50_ms']:.2f} "
            f"without_p50={result['without_ms']['p50']:.2f} with_p50={result['with_ms']['p50']:.2f}"
        )
    return out


ADDED_MAX_MS = 5.0  # the budget for a query at 200,000 listings


def run(profile: Any, version: Path | None, work: Path) -> dict[str, Any]:
    """The `make bench` part: the served version of --model-dir, if it has an index."""
    if version is None or "comparables" not in json.loads((version / "model_card.json").read_text()):
        return {"error": f"{version} has no comparables index (a model exported before them): make train"}
    return measure(version, profile.comparables_cost_rows, profile.comparables_cost_rounds, 10, work / "cost")


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    part = r.get("comparables_cost") or {}
    synthetic = part.get("synthetic") or {}
    rows = synthetic.get("count", "?")
    name = (
        f"service, 1 client, in turns: 5 comparables add <= {ADDED_MAX_MS:g} ms p50 to a prediction ({rows:,} listings)"
        if isinstance(rows, int)
        else "service: comparables' added p50"
    )
    added = synthetic.get("added_p50_ms")
    own = part.get("own") or {}
    text = (
        f"+{added:.2f} ms ({synthetic['search']}; {synthetic['without_ms']['p50']:.2f} -> "
        f"{synthetic['with_ms']['p50']:.2f} ms); the model's own index of {own.get('count', 0):,} "
        f"({own.get('search')}): +{own.get('added_p50_ms', float('nan')):.2f} ms"
        if added is not None
        else ""
    )
    return [target(name, added, ADDED_MAX_MS, False, text)]


def markdown(r: dict[str, Any]) -> list[str]:
    part = r.get("comparables_cost") or {}
    lines = ["", "## Comparables in the service (one client, `?comparables=0` and `=5` in turns)", ""]
    if "own" not in part:
        return [*lines, f"not measured ({part.get('error', 'skipped')})"]
    lines += [
        f"`python -m bench.comparables_cost` on `{part['model']}` (micro-batched service, `explain=false`): "
        f"{part['rounds']} rounds of {part['block']} requests without comparables, then {part['block']} with "
        "5, one at a time; over the model's own index and over a copy whose index holds synthetic listings.",
        "",
        "| index | listings | search | p50 without ms | p50 with ms | added p50 ms | p99 with ms |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for label in ("own", "synthetic"):
        x = part[label]
        lines.append(
            f"| {label} | {x['count']:,} | {x['search']} | {x['without_ms']['p50']:.2f} | {x['with_ms']['p50']:.2f} | "
            f"{x['added_p50_ms']:+.2f} | {dig(x, 'with_ms', 'p99'):.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.comparables_cost", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="a version folder with a comparables index")
    p.add_argument("--rows", type=int, default=200_000, help="listings of the synthetic index")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--block", type=int, default=10)
    a = p.parse_args(argv)
    if not (a.model / "model_card.json").is_file() or "comparables" not in json.loads(
        (a.model / "model_card.json").read_text()
    ):
        print(f"error: {a.model} is not a version folder with a comparables index (make train)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-comparables-") as tmp:
        print(json.dumps(measure(a.model, a.rows, a.rounds, a.block, Path(tmp))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
