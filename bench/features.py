"""The feature pass of `make train` with a frozen pretrained photo encoder, in photos per second.

``python -m bench.features --photos N`` generates N synthetic listings (their photos as the
default data set has them), builds the frozen backbone as training does
(``training.features.photo.backbone``: efficientnet_lite0 at 224 px unless told otherwise), runs
``compute_features`` on one batch to warm it up (tracing, thread pools, the files' page cache),
then times ``compute_features`` over all N photos: read, decode, resize, batches of 32, the
backbone, as ``attach_photo_features`` runs it. Prints one JSON line: photos per second, the
cores the process may use and how many it kept busy (its CPU time over the wall time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common.quiet_tf  # noqa: F401  (an entry point: no native TensorFlow start-up lines)
from bench.common import run_json, say
from harness.models import SYNTHETIC_CONFIG


def run(profile: Any) -> dict[str, Any]:
    """The pass in its own process (from the orchestrator)."""
    say(f"features: frozen efficientnet_lite0 at {profile.feature_image_size} px over {profile.feature_photos} photos")
    args = ["-m", "bench.features", "--photos", str(profile.feature_photos),
            "--image-size", str(profile.feature_image_size)]  # fmt: skip
    result = run_json(args, timeout=1800)
    say(
        f"features: {result['photos_per_second']:.1f} photos/s ({result['photos']} photos in "
        f"{result['seconds']:.1f} s, {result['cores_busy']:.1f} of {result['cores_available']} cores busy)"
    )
    return result


def photo_paths(table: Path) -> list[str]:
    with open(table, newline="") as f:
        return [str(table.parent / row["image"]) for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.features", description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=384, help="photos timed (after one warm-up batch)")
    p.add_argument("--encoder", default="efficientnet_lite0")
    p.add_argument("--image-size", type=int, default=224)
    a = p.parse_args(argv)

    import tensorflow as tf

    from training.config import load
    from training.data.synthetic import generate
    from training.features.photo import BATCH, backbone, compute_features

    sets = [f"model.image_encoder={a.encoder!r}", f"model.image_size={a.image_size}", "model.image_trainable_blocks=0"]
    cfg = load(SYNTHETIC_CONFIG, sets)
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        paths = photo_paths(generate(a.photos, seed=11, out=Path(tmp) / "items", workers=1, quiet=True))
        t0 = time.perf_counter()
        model = backbone(cfg)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        compute_features(cfg, paths[:BATCH], model)
        warmup_s = time.perf_counter() - t0
        cpu0, t0 = time.process_time(), time.perf_counter()
        features = compute_features(cfg, paths, model)
        seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    result = {
        "encoder": a.encoder,
        "image_size": a.image_size,
        "batch": BATCH,
        "photos": len(paths),
        "feature_width": int(features.shape[1]),
        "seconds": round(seconds, 2),
        "photos_per_second": len(paths) / seconds,
        "build_s": round(build_s, 2),
        "warmup_s": round(warmup_s, 2),
        "cpu_s": round(cpu_s, 2),
        "cores_available": len(os.sched_getaffinity(0)),
        "cores_busy": cpu_s / seconds,
        # 0: TensorFlow's default, one thread per available core
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
