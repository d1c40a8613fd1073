"""Input pipeline: does reading photos from files through tf.data starve training?

``python -m bench.pipeline --rows N`` builds the default model (training/configs/synthetic.toml)
on the first N training rows of the default data set and times training epochs (examples per
second, from a Keras callback around each epoch) fed three ways:

- files: ``make_dataset`` without its cache, so every epoch reads each JPEG and decodes it;
- cached: ``make_dataset`` as ``make train`` uses it: the first epoch reads and decodes the files
  and writes the decoded photos to a cache file, later epochs read that file;
- memory: the same examples, decoded once and held in memory (``Dataset.cache()`` in RAM), shuffled
  each epoch with the same buffer as the training pipeline, then batched: the same work for the
  training step, nothing left for the pipeline to do.

The kinds of epoch alternate in rounds (memory, files, cached, then the reverse order). The ratio
to memory of each kind is the median over rounds of the ratio within a round (the others on a
shared machine change the speed of every epoch by tens of percent within a minute; within a round
the epochs are seconds apart, and the median ignores a round hit by a burst). The fastest epoch of
each kind and the examples per CPU-second (this process) are reported too. It also times the
files pipeline alone (no model), to show how much faster it produces examples than training takes
them. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import common.quiet_tf  # noqa: F401  (an entry point: no native TensorFlow start-up lines)
from bench.common import ROOT, say

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "training/configs/synthetic.toml"))
    p.add_argument("--rows", type=int, default=3072, help="training examples per epoch")
    p.add_argument("--repeats", type=int, default=2, help="files/memory epoch pairs measured")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    a = p.parse_args(argv)

    import keras
    import tensorflow as tf

    warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # fit() on a tf.data.Dataset

    from training.config import load
    from training.data.dataset import make_dataset
    from training.data.table import load_table
    from training.features.preprocessing import fit_preprocessing
    from training.fit.trainer import compile_model
    from training.model.head import build_model

    cfg = load(a.config, [f"train.max_rows={math.ceil(a.rows * 1.35) + 64}", *a.set])
    if not cfg.table_path().exists():
        raise SystemExit(f"error: {cfg.table_path()} is missing: run `make train` (or `make data`) first")
    table = load_table(cfg)
    train = table.part("train").head(a.rows)
    n = len(train)
    keras.utils.set_random_seed(cfg.train.seed)
    pre = fit_preprocessing(cfg, train)
    model = build_model(cfg, pre)
    steps = math.ceil(n / cfg.train.batch_size)
    compile_model(cfg, model, steps)
    cols = list(model.input)

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

            self.cpu_seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self.t0)
            self.cpu_seconds.append(time.process_time() - self.cpu0)

    cpu_rates: dict[str, list[float]] = {"memory": [], "files": [], "cached": []}

    def epochs(ds: tf.data.Dataset, count: int = 1, kind: str | None = None) -> list[float]:
        timer = EpochTimer()
        model.fit(ds, epochs=count, verbose=0, callbacks=[timer])
        if kind:
            cpu_rates[kind] += [n / s for s in timer.cpu_seconds]
        return [n / s for s in timer.seconds]

    files = make_dataset(cfg, train, training=True, columns=cols)
    # In memory: the decoded rows cached in RAM, then shuffled and batched as the training pipeline does.
    unbatched = make_dataset(cfg, train, training=False, columns=cols).unbatch().cache()
    memory = (
        unbatched.shuffle(min(n, cfg.train.shuffle_buffer), seed=cfg.train.seed, reshuffle_each_iteration=True)
        .batch(cfg.train.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    say(f"pipeline: {n} examples, batch {cfg.train.batch_size}, image {cfg.model.image_size}px; warm-up epoch")
    epochs(memory)  # traces the train step and fills the in-memory cache

    started = time.perf_counter()
    produced = sum(int(tf.shape(y)[0]) for _, y in files)
    pipeline_only = n / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cached = make_dataset(cfg, train, training=True, columns=cols, cache=str(Path(tmp) / "train"))
        first_cached = epochs(cached)[0]  # reads and decodes the files, writes the cache
        say(f"pipeline: make train's pipeline, first epoch (decodes, fills the cache): {first_cached:.0f} examples/s")
        rates: dict[str, list[float]] = {"memory": [], "files": [], "cached": []}
        kinds = {"memory": memory, "files": files, "cached": cached}
        for r in range(a.repeats):
            order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
            for kind in order:
                rates[kind] += epochs(kinds[kind], kind=kind)
            say(
                f"pipeline: round {r + 1}/{a.repeats}: "
                + ", ".join(f"{k} {rates[k][-1]:.0f}" for k in kinds)
                + " examples/s"
            )

    # Fastest epoch of each kind: other processes on the machine only ever slow an epoch down.
    files_rate, memory_rate, cached_rate = (max(rates[k]) for k in ("files", "memory", "cached"))
    cpu = {k: statistics.median(v) for k, v in cpu_rates.items()}
    # The ratios: the median over rounds of each round's ratio (epochs seconds apart).
    paired = {k: [x / m for x, m in zip(rates[k], rates["memory"], strict=True)] for k in ("files", "cached")}
    result = {
        "examples": n,
        "batch_size": cfg.train.batch_size,
        "image_size": cfg.model.image_size,
        "produced": produced,
        "files_examples_per_s": files_rate,
        "memory_examples_per_s": memory_rate,
        "cached_first_epoch_examples_per_s": first_cached,
        "cached_examples_per_s": cached_rate,
        "pipeline_only_examples_per_s": pipeline_only,
        "ratio_files_memory": statistics.median(paired["files"]),
        "ratio_cached_memory": statistics.median(paired["cached"]),
        "ratio_files_memory_fastest": files_rate / memory_rate,
        "ratio_cached_memory_fastest": cached_rate / memory_rate,
        "round_ratios": paired,
        "epochs": rates,
        "examples_per_cpu_s": cpu,
        "ratio_files_memory_cpu": cpu["files"] / cpu["memory"],
        "ratio_cached_memory_cpu": cpu["cached"] / cpu["memory"],
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
