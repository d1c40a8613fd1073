"""One model version: its card read and validated (common/card.py), its SavedModel loaded and
checked against the card, warmed up; and how to call it."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from common.card import ServableCard, describe_errors
from service.comparables import Index, load_index
from service.explain import Occlusion, PriceRange, occlusion_from_card, range_from_card
from service.schemas.inputs import InputSpec, input_groups, input_specs
from service.schemas.request import Limits, ModelSchema
from service.settings import Settings

logger = logging.getLogger("service.registry")  # one logger for finding, loading and swapping versions


class ModelLoadError(RuntimeError):
    """A version that cannot be served (it is refused, the current one keeps serving)."""


class RowError(ValueError):
    """The model could not price one row (e.g. image bytes TensorFlow cannot decode)."""


@dataclass
class LoadedModel:
    """One loaded, warmed-up model version and how to call it."""

    version: int
    path: Path
    card: dict[str, Any]  # as read: GET /v1/model shows it whole, unknown keys included
    schema: ModelSchema
    signature: Any
    output: str
    saved_model: Any = None  # the loaded object; keeps the signature's variables alive
    loaded_at: float = field(default_factory=time.time)
    price_range: PriceRange | None = None  # the card's calibrated range (None: an older card)
    occlusion: Occlusion | None = None  # neutral inputs for the contributions (None: an older card)
    name: str = ""
    comparables: Index | None = None  # the comparables index (None: an older card, or none exported)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Price a batch of prepared rows (images as encoded bytes) in one signature call.

        Returns a float64 array of shape [len(rows)]. Blocking: call from a worker thread.
        """
        return self.predict_embed(rows)[0]

    def predict_embed(self, rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict``, and the rows' embeddings [len(rows), dim] when the version has comparables."""
        import tensorflow as tf

        feeds = {}
        for spec in self.schema.inputs:
            values = [row[spec.name] for row in rows]
            if spec.role == "numeric":
                feeds[spec.name] = tf.constant(np.asarray(values, dtype=np.float32))
            elif spec.max_photos is not None:
                feeds[spec.name] = tf.constant([_slots(v, spec.max_photos) for v in values], dtype=tf.string)
            else:
                feeds[spec.name] = tf.constant(values, dtype=tf.string)
        outputs = self.signature(**feeds)
        prices = np.asarray(outputs[self.output].numpy(), dtype=np.float64).reshape(-1)
        if prices.shape[0] != len(rows):
            raise ModelLoadError(f"output {self.output!r} has {prices.shape[0]} values for {len(rows)} rows")
        if self.comparables is None:
            return prices, None
        embeddings = np.asarray(outputs[self.comparables.output].numpy(), dtype=np.float32)
        if embeddings.shape != (len(rows), self.comparables.neighbours.dim):
            raise ModelLoadError(
                f"output {self.comparables.output!r} is {list(embeddings.shape)}, expected "
                f"[{len(rows)}, {self.comparables.neighbours.dim}]"
            )
        return prices, embeddings


def _slots(photos: Any, max_photos: int) -> list[bytes]:
    """One row's photos as the signature's ``max_photos`` slots: the photos first, then "" (a
    single photo's bytes, e.g. the explain baseline, is one photo)."""
    photos = [photos] if isinstance(photos, bytes | str) else list(photos)
    photos = [p for p in photos if p][:max_photos]
    return photos + [b""] * (max_photos - len(photos))


def read_card(path: Path) -> tuple[dict[str, Any], ServableCard, dict[str, str]]:
    """``model_card.json`` as read, validated, and ``{block: reason}`` of the optional blocks dropped.

    Raises:
        ModelLoadError: unreadable, or not a card the service can serve (the reason names the field).
    """
    try:
        raw = json.loads((path / "model_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model_card.json unreadable: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError("model_card.json is not an object")
    try:
        card, dropped = ServableCard.read(raw)
    except ValidationError as exc:
        raise ModelLoadError(f"model card: {describe_errors(exc, raw)}") from None
    return raw, card, dropped


def _check_signature(signature: Any, inputs: Sequence[InputSpec], output: str) -> None:
    """The signature takes exactly the card's inputs, with their dtypes, and has its output."""
    import tensorflow as tf

    _, accepted = signature.structured_input_signature
    expected = {s.name: (tf.float32 if s.role == "numeric" else tf.string) for s in inputs}
    shapes = {s.name: [None, s.max_photos] if s.max_photos is not None else [None] for s in inputs}
    missing = sorted(set(accepted) - set(expected))
    if missing:
        raise ModelLoadError(f"signature needs inputs the card does not list: {missing}")
    for name, dtype in expected.items():
        spec = accepted.get(name)
        if spec is None:
            raise ModelLoadError(f"card input {name!r} is not in the signature")
        if spec.dtype != dtype:
            raise ModelLoadError(f"signature input {name!r} is {spec.dtype.name}, not {dtype.name}")
        _check_shape(name, spec.shape, shapes[name])
    if output not in signature.structured_outputs:
        raise ModelLoadError(f"signature has no output {output!r}")


def _check_shape(name: str, shape: Any, expected: list[int | None]) -> None:
    """A signature argument of the card's shape: ``[batch]``, or ``[batch, max_photos]`` for the
    photos of a card with ``image.max_photos`` (an unknown rank or dimension is accepted)."""
    if shape.rank is None:
        return
    dims = shape.as_list()
    wanted = "[batch]" if len(expected) == 1 else f"[batch, {expected[1]}] (max_photos {expected[1]})"
    if len(dims) != len(expected) or any(
        d is not None and e is not None and d != e for d, e in zip(dims, expected, strict=True)
    ):
        shown = "[" + ", ".join("batch" if i == 0 and d is None else str(d) for i, d in enumerate(dims)) + "]"
        raise ModelLoadError(f"signature input {name!r} is {shown}, the card says {wanted}")


def load_version(path: Path, version: int, settings: Settings) -> LoadedModel:
    """Load a version, check its card against its signature and warm it up.

    Raises:
        ModelLoadError: whatever goes wrong, with the reason.
    """
    raw, card, dropped = read_card(path)
    limits = Limits(
        max_text_chars=settings.max_text_chars,
        max_category_chars=settings.max_category_chars,
        max_image_bytes=settings.max_image_bytes,
        max_batch_items=settings.max_batch_items,
    )
    schema = ModelSchema(inputs=input_specs(card), currency=card.currency, limits=limits, groups=input_groups(card))

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures[card.signature]
    except Exception as exc:  # any corruption: DecodeError, NotFoundError, KeyError...
        raise ModelLoadError(f"SavedModel does not load: {type(exc).__name__}: {exc}") from exc
    _check_signature(signature, schema.inputs, card.output)

    model = LoadedModel(version, path, raw, schema, signature, card.output, saved_model=loaded, name=card.name)
    if card.comparables is not None:  # a broken index refuses the version, like a broken SavedModel
        if card.comparables.output not in signature.structured_outputs:
            raise ModelLoadError(f"signature has no output {card.comparables.output!r} for the comparables")
        try:
            model.comparables = load_index(path, card.comparables)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"comparables index: {exc}") from None
    warm_up(model, settings.warmup_runs)
    _attach_explanations(model, card, dropped)
    return model


def _attach_explanations(model: LoadedModel, card: ServableCard, dropped: Mapping[str, str]) -> None:
    """The card's range and occlusion baseline; a card without them (or with a broken one) still
    serves, without them, after a warning."""
    if "interval" in dropped:
        logger.warning("event=range_disabled version=%s reason=%s", model.version, dropped["interval"][:300])
    model.price_range = range_from_card(card.interval)
    try:
        if "explain" in dropped:
            raise ValueError(dropped["explain"])
        occlusion = occlusion_from_card(card.explain, model.schema.inputs)
        if occlusion is not None:  # the baseline must price too (e.g. its photo must decode)
            prices = model.predict(occlusion.rows(model.schema.example_item(image_bytes=True)))
            if not all(math.isfinite(p) for p in prices):
                raise ValueError(f"a neutral copy gave a non-finite price: {prices.tolist()}")
        model.occlusion = occlusion
    except Exception as exc:  # noqa: BLE001  # any failure only turns the contributions off
        logger.warning("event=contributions_disabled version=%s reason=%s", model.version, str(exc)[:300])
    missing = [block for block in ("interval", "explain") if block not in model.card]
    if missing:
        logger.warning(
            "event=model_card_without version=%s fields=%s detail=served without %s",
            model.version,
            ",".join(missing),
            " and ".join({"interval": "a price range", "explain": "contributions"}[m] for m in missing),
        )


def warm_up_batches(schema: ModelSchema) -> list[list[dict[str, Any]]]:
    """The warm-up's batches: the example item alone, then two. With a card's ``missing`` block the
    two are incomplete: only the first input group given, then only the last (e.g. metadata without
    text or photo, a photo alone), so a model that cannot price a missing input is refused."""
    row = schema.example_item(image_bytes=True)
    if not schema.optional:
        return [[row], [row, row]]
    groups = schema.all_groups
    alone = [schema.model_row({n: row[n] for n in schema.inputs_of(g)}) for g in (groups[0], groups[-1])]
    return [[row], alone]


def warm_up(model: LoadedModel, runs: int) -> None:
    """Run a few predictions (batch sizes 1 and 2) and require finite prices."""
    batches = warm_up_batches(model.schema)
    for run in range(max(runs, 1 if model.comparables is not None else 0)):
        batch = batches[run % 2]
        try:
            prices, embeddings = model.predict_embed(batch)
            if embeddings is not None:
                if not np.isfinite(embeddings).all():
                    raise ValueError("the embedding of the example item is not finite")
                model.comparables.search(embeddings, 1)  # type: ignore[union-attr]
        except Exception as exc:
            raise ModelLoadError(f"warm-up failed: {type(exc).__name__}: {exc}") from exc
        if not all(math.isfinite(p) for p in prices):
            raise ModelLoadError(f"warm-up gave a non-finite price: {prices.tolist()}")
