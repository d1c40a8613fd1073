"""Model versions for a run, and the tiny training recipe the tests, the benchmark's memory runs
and the reliability tools train with when they need a real model fast.

- ``newest_servable(model_dir)``: the highest version folder that holds a SavedModel (None: none).
- ``install_version(source, model_dir, version, edit=None)``: copy an export in the way the
  exporter writes one (a hidden work folder, then one rename), so a watching service never sees
  half of it; ``edit`` may change the copy before the rename (a broken file, another card).
- ``tiny_sets(table, models_dir, name, **train)``: ``--set`` overrides of the tiny recipe
  (32 px photos, two small conv layers, a 2,000-token vocabulary, no ablations, no baselines);
  ``train_args(sets, *extra)``: the arguments of ``python -m training train`` for them.

Standard library only (common.files is too).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from common.files import versions

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIG = ROOT / "training" / "configs" / "synthetic.toml"
TINY_MODEL = (
    "model.image_size=32",
    "model.image_filters=[8, 16]",
    "model.text_max_tokens=2000",
    "train.ablations='none'",
    "train.baselines=false",
)


def newest_servable(model_dir: Path) -> Path | None:
    """The highest integer version folder under ``model_dir`` holding a saved_model.pb."""
    found = [v for v in versions(model_dir) if (Path(model_dir) / str(v) / "saved_model.pb").is_file()]
    return Path(model_dir) / str(found[-1]) if found else None


def install_version(
    source: Path, model_dir: Path, version: int | str, edit: Callable[[Path], None] | None = None, tag: str = "copy"
) -> Path:
    """Copy the export ``source`` to ``model_dir/<version>`` through ``.tmp-<version>-<tag>``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    work = model_dir / f".tmp-{version}-{tag}"
    shutil.copytree(source, work)
    if edit is not None:
        edit(work)
    target = model_dir / str(version)
    work.rename(target)
    return target


def truncate_savedmodel(folder: Path) -> None:
    """An ``install_version`` edit: saved_model.pb cut short, as an interrupted copy leaves it."""
    pb = folder / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:200])


def _literal(value: object) -> str:
    """A value in the TOML syntax of ``--set`` (Python's repr but for true/false)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def tiny_recipe(**train: object) -> list[str]:
    """The tiny recipe's overrides, two epochs unless ``train`` says otherwise."""
    train = {"epochs": 2, **train}
    return [*TINY_MODEL, *(f"train.{key}={_literal(value)}" for key, value in train.items())]


def tiny_sets(table: Path, models_dir: Path, name: str = "tiny", **train: object) -> list[str]:
    """The tiny recipe on ``table``, exporting to ``models_dir/<name>``."""
    paths = [f"data.table={str(table)!r}", f"models_dir={str(models_dir)!r}", f"name={name!r}"]
    return [*paths, *tiny_recipe(**train)]


def train_args(sets: Sequence[str], *extra: str, config: Path = SYNTHETIC_CONFIG) -> list[str]:
    """``--config CONFIG --set A --set B ... EXTRA``: what follows ``python -m training train``."""
    return ["--config", str(config), *[arg for item in sets for arg in ("--set", item)], *extra]
