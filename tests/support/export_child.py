"""Run ``training.export.export`` on a small contract model in a process the test kills.

    python -m tests.support.export_child STAGE MODELS_DIR

Prints ``READY <stage>`` and sleeps at the chosen point of the export so that the parent can
SIGKILL it there: ``savedmodel`` (saved_model.pb half written), ``variables`` (the weights half
written), ``card`` (model_card.json half written), ``rename`` (all written, not yet renamed);
``random`` prints ``EXPORT_START`` and lets the parent kill it at a random moment; ``none``
exports normally and prints ``DONE <path>``. Importable: ``contract_model`` and ``export_card``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from training.export import exporter  # noqa: E402


def hang(stage: str) -> None:
    print(f"READY {stage}", flush=True)
    time.sleep(600)  # the parent kills us here


def contract_model() -> keras.Model:
    """One numeric input `x`, a dict output `price`: what docs/contract.md asks of a model."""
    x = keras.Input(shape=(), dtype="float32", name="x")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Reshape((1,))(x))
    return keras.Model({"x": x}, {"price": keras.layers.Dense(1, activation="softplus")(hidden)})


def export_card() -> dict:
    return {
        "target": "price",
        "currency": "EUR",
        "inputs": [{"name": "x", "role": "numeric", "dtype": "float32", "min": 0.0, "max": 10.0, "mean": 5.0}],
    }


def main() -> None:
    stage, models_dir = sys.argv[1], Path(sys.argv[2])
    cfg = SimpleNamespace(models_dir=str(models_dir), name="killed")
    card = export_card()
    original_export = keras.Model.export
    original_write = Path.write_text
    original_rename = Path.rename

    def export(self, path, *args, **kwargs):
        result = original_export(self, path, *args, **kwargs)
        if stage == "savedmodel":
            pb = Path(path) / "saved_model.pb"
            pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
            hang(stage)
        if stage == "variables":
            for data in (Path(path) / "variables").glob("variables.data-*"):
                data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
            hang(stage)
        return result

    def write_text(self, text, *args, **kwargs):
        if stage == "card" and self.name == "model_card.json":
            original_write(self, text[: len(text) // 2], *args, **kwargs)
            hang(stage)
        return original_write(self, text, *args, **kwargs)

    def rename(self, target):
        if stage == "rename" and self.name.startswith(".tmp-"):
            hang(stage)
        return original_rename(self, target)

    keras.Model.export = export
    Path.write_text = write_text
    Path.rename = rename
    model = contract_model()
    if stage == "random":
        print("EXPORT_START", flush=True)
    out = exporter.export(cfg, model, card)
    print(f"DONE {out}", flush=True)


if __name__ == "__main__":
    main()
