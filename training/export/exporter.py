"""Versioned, atomic export of the serving model and its model card.

`models/<name>/<version>/` is written as `models/<name>/.tmp-<version>-<pid>/` and renamed into
place only when the SavedModel and `model_card.json` are complete, so a reader (the service's
registry) never sees half a model. Versions are integers; the highest is the newest
(`common.files.versions` / `newest`). The card is validated against `common.card.ModelCard`
before anything is written, so a card that does not follow common/card.py is never written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from pydantic import ValidationError

from common.card import ModelCard, describe_errors
from common.files import atomic_write_text, jsonable, newest, versions
from training.config import Config, UserError


def card_for(cfg: Config, body: Mapping[str, Any], version: int = 0) -> ModelCard:
    """The whole card: `body` (see `training.export.card.build_card`) with name, version and time.

    Raises:
        UserError: the card does not follow common/card.py (a field of the wrong type, or one it
            does not declare: declare new fields there first).
    """
    fields = {
        "name": cfg.name,
        "version": version,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "signature": "serving_default",
        "output": "price",
        **jsonable(body),
    }
    card = _validated(fields)
    _declared(card.undeclared())
    return card


def _validated(fields: Mapping[str, Any]) -> ModelCard:
    try:
        return ModelCard.model_validate(fields)
    except ValidationError as e:
        raise UserError(f"export: the model card is invalid: {describe_errors(e, fields)}") from None


def _declared(undeclared: list[str]) -> None:
    if undeclared:
        raise UserError(f"export: the model card has fields common/card.py does not declare: {undeclared}")


def export(
    cfg: Config, serving: keras.Model, card: Mapping[str, Any] | ModelCard, extra_files: dict[str, Path] | None = None
) -> Path:
    """Write the SavedModel and card to the next free version; return the version folder."""
    base = card if isinstance(card, ModelCard) else card_for(cfg, card)
    root = Path(cfg.models_dir) / cfg.name
    root.mkdir(parents=True, exist_ok=True)
    while True:
        version = (versions(root) or [0])[-1] + 1
        tmp = root / f".tmp-{version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        serving.export(str(tmp), format="tf_saved_model", verbose=False)
        for name, src in (extra_files or {}).items():
            if Path(src).is_dir():
                shutil.copytree(src, tmp / name)
            else:
                shutil.copy(src, tmp / name)
        # Inside the work folder a plain write is enough: the folder's rename below is the atomic step.
        (tmp / "model_card.json").write_text(base.model_copy(update={"version": version}).to_json())
        try:
            tmp.rename(root / str(version))  # atomic; fails if another export took this version
            return root / str(version)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)


def update_card(version_dir: Path, **fields: Any) -> None:
    """Add fields to an exported card (validated, then written atomically)."""
    path = version_dir / "model_card.json"
    current = json.loads(path.read_text())
    card = _validated({**current, **jsonable(fields)})
    _declared([k for k in card.undeclared() if k.split(".")[0].split("[")[0] in fields])  # old keys may stay
    atomic_write_text(path, card.to_json())


__all__ = ["card_for", "export", "newest", "update_card", "versions"]
