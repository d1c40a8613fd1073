"""Versioned, atomic export of the serving model and its model card.

`models/<name>/<version>/` is written as `models/<name>/.tmp-<version>-<pid>/` and renamed into
place only when the SavedModel and `model_card.json` are complete, so a reader (the service's
registry) never sees half a model. Versions are integers; the highest is the newest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import Config
from training.features.preprocessing import Preprocessing


def versions(root: Path) -> list[int]:
    """Integer version folders under `root`, oldest first."""
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def newest(path: str | Path) -> Path:
    """`models/<name>` -> its highest version folder; a version folder is returned as is."""
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    vs = versions(path)
    if not vs:
        raise FileNotFoundError(f"no exported model versions under {path}")
    return path / str(vs[-1])


def input_schema(cfg: Config, pre: Preprocessing, train: pd.DataFrame) -> list[dict[str, Any]]:
    """Every input: name, role, dtype, and what a client needs to fill it (vocabulary, range, examples)."""
    d = cfg.data
    out: list[dict[str, Any]] = []
    for c in d.categorical:
        out.append({"name": c, "role": "categorical", "dtype": "string", "vocabulary_size": len(pre.vocab[c]),
                    "vocabulary": pre.vocab[c], "examples": pre.vocab[c][:3]})
    for c in d.numeric:
        v = train[c].to_numpy(dtype="float64")
        v = v[np.isfinite(v)]
        mean, std = pre.numeric[c]
        out.append({"name": c, "role": "numeric", "dtype": "float32",
                    "min": float(v.min()) if v.size else 0.0, "max": float(v.max()) if v.size else 0.0,
                    "mean": mean, "std": std, "examples": [float(x) for x in v[:3]]})
    for c in d.text:
        ex = [s for s in train[c].head(20).tolist() if s][:2]
        out.append({"name": c, "role": "text", "dtype": "string", "vocabulary_size": len(pre.text_vocab[c]),
                    "examples": [e[:200] for e in ex]})
    if d.image:
        out.append({"name": d.image, "role": "image", "dtype": "string", "format": "encoded image bytes",
                    "accepts": ["jpeg", "png", "gif", "bmp"], "image_size": [cfg.model.image_size] * 2})
    return out


def library_versions() -> dict[str, str]:
    import sklearn

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def export(cfg: Config, serving: keras.Model, card: dict[str, Any], extra_files: dict[str, Path] | None = None) -> Path:
    """Write the SavedModel and card to the next free version; return the version folder."""
    root = Path(cfg.models_dir) / cfg.name
    root.mkdir(parents=True, exist_ok=True)
    while True:
        version = (versions(root) or [0])[-1] + 1
        tmp = root / f".tmp-{version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        serving.export(str(tmp), format="tf_saved_model", verbose=False)
        full = {"name": cfg.name, "version": version,
                "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "signature": "serving_default", "output": "price", **card}
        for name, src in (extra_files or {}).items():
            shutil.copy(src, tmp / name)
        (tmp / "model_card.json").write_text(json.dumps(full, indent=2, default=_jsonable))
        try:
            tmp.rename(root / str(version))  # atomic; fails if another export took this version
            return root / str(version)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)


def update_card(version_dir: Path, **fields: Any) -> None:
    """Add fields to an exported card (write a temporary file, then rename)."""
    path = version_dir / "model_card.json"
    card = json.loads(path.read_text())
    card.update(fields)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, default=_jsonable))
    tmp.replace(path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
