"""The served model with the ImageNet-pretrained photo encoder, measured as the scratch one is.

A request's photo then runs decode -> resize -> EfficientNet-Lite0 -> head inside the SavedModel,
so its serving cost is the backbone's, whatever data the head was trained on. This part measures
that model the way the scratch model is measured: the bound (bench/bound.py: batch 1 and batch
32 in process) and the micro-batched service (`python -m service`, 32 rows, no wait) at 1 and 32
clients, with the server's peak RSS.

Where the model comes from (``--pretrained-model-dir DIR``):

- DIR holds a model version: it is served as it is (unless the bench trained it itself with
  another recipe: see below);
- otherwise the bench trains a small one, once: a few hundred generated listings, one epoch,
  frozen ``efficientnet_lite0`` (224 px; 64 px in --quick), no ablations, no baselines, into DIR
  or, without the option, into ``models/bench-pretrained/<encoder>-<size>px``. The folder keeps
  the recipe in ``bench-recipe.json``; a later run with the same recipe reuses the model, one with
  another recipe replaces it.

Runs from the orchestrator (no TensorFlow here): the training, the bound and the server are
child processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, make_payloads, pin_version, run_section, say
from bench.memory import generate
from bench.serving import bench_server, run_bound, server_specs
from common.files import atomic_write_text, versions
from harness.models import newest_servable, train_args

ENCODER = "efficientnet_lite0"
DEFAULT_ROOT = ROOT / "models" / "bench-pretrained"
RECIPE_FILE = "bench-recipe.json"
# Lines of the training log worth a progress line (the rest stays in the log file).
PROGRESS = ("event=photo_features_start", "event=photo_features done", "event=epoch ", "event=exported")


def recipe(profile: Any) -> dict[str, Any]:
    """What the bench trains when it has to: the figures a reused model must have been made with."""
    return {
        "encoder": ENCODER,
        "image_size": profile.pretrained_image_size,
        "rows": profile.pretrained_rows,
        "epochs": 1,
        "batch_size": 64,
        "text_max_tokens": 2000,
        "seed": 0,
    }


def default_folder(rec: dict[str, Any]) -> Path:
    return DEFAULT_ROOT / f"{rec['encoder']}-{rec['image_size']}px"


def read_recipe(folder: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((folder / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def plan(folder: Path, rec: dict[str, Any], given: bool) -> tuple[str, str]:
    """("use" or "train", why) for the model folder ``folder``; ``given``: named by the option."""
    if newest_servable(folder) is None:
        return "train", f"{folder} holds no model version"
    made_with = read_recipe(folder)
    if made_with == rec:
        return "use", "trained by an earlier bench run with the same recipe"
    if made_with is None and given:
        return "use", "given with --pretrained-model-dir"
    return "train", f"{folder} was trained with another recipe"


def training_sets(folder: Path, table: Path, rec: dict[str, Any]) -> list[str]:
    """The ``--set`` overrides of the bench's training run, exporting to ``folder/<version>``."""
    return [
        f"data.table={str(table)!r}",
        f"models_dir={str(folder.parent)!r}",
        f"name={folder.name!r}",
        f"model.image_encoder={rec['encoder']!r}",
        f"model.image_size={rec['image_size']}",
        f"model.text_max_tokens={rec['text_max_tokens']}",
        f"train.epochs={rec['epochs']}",
        f"train.batch_size={rec['batch_size']}",
        f"train.seed={rec['seed']}",
        "train.ablations='none'",
        "train.baselines=false",
    ]


def _run_logged(args: list[str], cwd: Path, log_path: Path, timeout_s: float) -> int:
    """Run ``args``, its output into ``log_path``, the PROGRESS lines also as progress lines;
    killed after ``timeout_s``. Returns the exit code."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            args, cwd=cwd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        watchdog = threading.Timer(timeout_s, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if any(key in line for key in PROGRESS):
                    say("pretrained: training: " + line[line.index("event=") :].strip())
            return proc.wait()
        finally:
            watchdog.cancel()


def train(folder: Path, rec: dict[str, Any], timeout_s: float = 1800.0) -> float:
    """Train and export the small pretrained model into ``folder`` (its old versions removed
    first); its recipe written beside them. Returns the seconds it took."""
    started = time.monotonic()
    for old in versions(folder):
        shutil.rmtree(folder / str(old))
    with tempfile.TemporaryDirectory(prefix="bench-pretrained-") as tmp:
        work = Path(tmp)
        say(f"pretrained: generating {rec['rows']} synthetic listings to train a small model on")
        table = generate(rec["rows"], work / "data")
        sets = training_sets(folder, table, rec)
        say(f"pretrained: training it ({rec['encoder']} frozen, {rec['image_size']} px, 1 epoch) into {folder}")
        code = _run_logged([sys.executable, "-m", "training", "train", *train_args(sets)], work, work / "train.log",
                           timeout_s)  # fmt: skip
        if code != 0 or newest_servable(folder) is None:
            tail = (work / "train.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"training the pretrained model exited with {code}:\n{tail}")
    atomic_write_text(folder / RECIPE_FILE, json.dumps(rec, indent=2) + "\n")
    return time.monotonic() - started


def obtain(given: Path | None, rec: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The version folder to serve and where it came from (trained now, reused or given)."""
    folder = (given or default_folder(rec)).resolve()
    action, why = plan(folder, rec, given is not None)
    source: dict[str, Any] = {"dir": str(folder), "how": "used", "why": why}
    if action == "train":
        say(f"pretrained: training a model: {why}")
        source.update(how="trained", train_seconds=round(train(folder, rec), 1))
    version = newest_servable(folder)
    assert version is not None
    card = json.loads((version / "model_card.json").read_text())
    model = card.get("config", {}).get("model", {})
    source.update(
        version=version.name, encoder=model.get("image_encoder"), image_size=model.get("image_size"), recipe=rec
    )
    say(f"pretrained: serving {version} ({source['encoder']}, {source['image_size']} px; {source['how']}: {why})")
    return version, source


def measure(profile: Any, given: Path | None, work: Path) -> dict[str, Any]:
    """The pretrained model: where it came from, its bound and its micro-batched service."""
    version, source = obtain(given, recipe(profile))
    out: dict[str, Any] = {"model": source}
    payloads = make_payloads(version, profile.payloads, work / "pretrained-payloads")
    pinned = pin_version(version, work / "pretrained-models")
    label = f"pretrained {source['encoder']} {source['image_size']}px"
    spec = replace(
        server_specs(pinned)["batched"],
        label=f"{label}: service, micro-batching on (32 rows, adaptive: no wait)",
        levels=profile.pretrained_levels,
    )
    run_section(out, "bound", lambda: run_bound(profile, version, payloads, label=f"{label}: bound"))
    run_section(out, "service", lambda: bench_server(spec, profile, payloads, work / "logs"))
    return out
