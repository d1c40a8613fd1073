"""The bound: the exported SavedModel called in this process on raw inputs, no HTTP.

``python -m bench.bound --model models/price/1 --payloads FILE`` prints one JSON line: batch-1
latency (p50/p90/p99 over ``--calls`` calls) and items per second at batch 32 (and 8), with the
process's CPU time per item. Each call builds its tensors from the raw Python values (strings,
numbers, the photo's file bytes) and reads the prices back, as a server has to.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common.quiet_tf  # noqa: F401  (an entry point: no native TensorFlow start-up lines)
from bench.common import load_payloads, percentiles

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def raw_rows(inputs: list[dict[str, Any]], bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request bodies as a server holds them after parsing: the photos back to bytes."""
    images = [spec["name"] for spec in inputs if spec["role"] == "image"]
    return [{**body, **{name: base64.b64decode(body[name]) for name in images}} for body in bodies]


def time_batches(
    call: Callable[[list[dict[str, Any]]], Any], rows: list[dict[str, Any]], size: int, calls: int
) -> dict[str, Any]:
    """Items per second, latency per call and CPU time per item of ``calls`` batches of ``size``."""
    batches = [[rows[(i * size + j) % len(rows)] for j in range(size)] for i in range(calls)]
    cpu0, started = time.process_time(), time.perf_counter()
    per_call = []
    for batch in batches:
        t = time.perf_counter()
        call(batch)
        per_call.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    return {
        "items_per_s": size * calls / elapsed,
        "call_ms": percentiles(per_call),
        "cpu_ms_per_item": (time.process_time() - cpu0) * 1000 / (size * calls),
    }


def signature_call(model: Path, inputs: list[dict[str, Any]]) -> tuple[Callable[[list[dict[str, Any]]], Any], float]:
    """(``call(rows) -> prices``, seconds the SavedModel took to load): the serving signature
    called on raw rows, its tensors built from the Python values, as a server has to."""
    import numpy as np
    import tensorflow as tf

    t0 = time.perf_counter()
    signature = tf.saved_model.load(str(model)).signatures["serving_default"]
    load_s = time.perf_counter() - t0

    def call(batch: list[dict[str, Any]]) -> Any:
        feeds = {}
        for spec in inputs:
            values = [r[spec["name"]] for r in batch]
            if spec["role"] == "numeric":
                feeds[spec["name"]] = tf.constant(np.asarray(values, dtype=np.float32))
            elif spec["role"] == "image" and spec.get("max_photos"):  # one photo, the other slots empty
                feeds[spec["name"]] = tf.constant([[v] + [b""] * (spec["max_photos"] - 1) for v in values])
            else:
                feeds[spec["name"]] = tf.constant(values, dtype=tf.string)
        return signature(**feeds)["price"].numpy()

    return call, load_s


def warm_up(call: Callable[[list[dict[str, Any]]], Any], rows: list[dict[str, Any]]) -> None:
    """Both batch sizes, as the service's warm-up does."""
    for i in range(20):
        call(rows[i % len(rows) : i % len(rows) + 1])
        call([rows[(i + j) % len(rows)] for j in range(32)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bound", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="a version folder, e.g. models/price/1")
    p.add_argument("--payloads", required=True, type=Path)
    p.add_argument("--calls", type=int, default=300, help="batch-1 calls measured")
    p.add_argument("--batch-calls", type=int, default=30, help="calls measured per larger batch size")
    a = p.parse_args(argv)

    inputs, bodies = load_payloads(a.payloads)
    rows = raw_rows(inputs, bodies)
    call, load_s = signature_call(a.model, inputs)
    warm_up(call, rows)

    times = []
    cpu0 = time.process_time()
    for i in range(a.calls):
        batch = [rows[i % len(rows)]]
        started = time.perf_counter()
        call(batch)
        times.append(time.perf_counter() - started)
    result: dict[str, Any] = {
        "load_s": round(load_s, 2),
        "batch1_latency_ms": percentiles(times),
        "batch1_calls": a.calls,
        "batch1_cpu_ms_per_item": (time.process_time() - cpu0) * 1000 / a.calls,
        "batches": {},
    }
    for size in (8, 32):
        result["batches"][str(size)] = time_batches(call, rows, size, a.batch_calls)
    result["batch32_items_per_s"] = result["batches"]["32"]["items_per_s"]
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
