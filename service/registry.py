"""Finds, loads, warms up and swaps model versions under MODEL_DIR.

A version is a folder named by a plain integer holding a SavedModel and its model_card.json
(docs/contract.md). The newest version that loads and warms up is served; requests take a
reference to the served ``LoadedModel`` once, so a swap never fails a request in flight.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.explain import Occlusion, PriceRange, parse_occlusion, parse_range
from service.metrics import Metrics
from service.schemas import CardError, Limits, ModelSchema, parse_inputs
from service.settings import Settings

logger = logging.getLogger(__name__)

_VERSION_NAME = re.compile(r"0|[1-9][0-9]{0,17}")


class ModelLoadError(RuntimeError):
    """A version that cannot be served (it is refused, the current one keeps serving)."""


class RowError(ValueError):
    """The model could not price one row (e.g. image bytes TensorFlow cannot decode)."""


@dataclass
class LoadedModel:
    """One loaded, warmed-up model version and how to call it."""

    version: int
    path: Path
    card: dict[str, Any]
    schema: ModelSchema
    signature: Any
    output: str
    saved_model: Any = None  # the loaded object; keeps the signature's variables alive
    loaded_at: float = field(default_factory=time.time)
    price_range: PriceRange | None = None  # the card's calibrated range (None: an older card)
    occlusion: Occlusion | None = None  # neutral inputs for the contributions (None: an older card)

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.path.parent.name)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Price a batch of prepared rows (images as encoded bytes) in one signature call.

        Returns a float64 array of shape [len(rows)]. Blocking: call from a worker thread.
        """
        import tensorflow as tf

        feeds = {}
        for spec in self.schema.inputs:
            values = [row[spec.name] for row in rows]
            if spec.role == "numeric":
                feeds[spec.name] = tf.constant(np.asarray(values, dtype=np.float32))
            else:
                feeds[spec.name] = tf.constant(values, dtype=tf.string)
        outputs = self.signature(**feeds)
        prices = np.asarray(outputs[self.output].numpy(), dtype=np.float64).reshape(-1)
        if prices.shape[0] != len(rows):
            raise ModelLoadError(f"output {self.output!r} has {prices.shape[0]} values for {len(rows)} rows")
        return prices


def _freeze_heap() -> None:
    """Collect once (the replaced version's objects go), then move every live object to the
    garbage collector's permanent generation.

    A loaded SavedModel is hundreds of thousands of Python objects; left in the collected
    generations, each full collection walks them all and holds the GIL for tens to hundreds of
    milliseconds, in the middle of some request (the p99 under load). Frozen, they are never
    walked again; the next swap unfreezes, so an old version can still be collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of a version's files: a refused version is retried only when
    its files change (e.g. a copy that was still in progress)."""
    entries = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = Path(root) / name
            try:
                stat = full.stat()
            except OSError:
                continue
            entries.append((str(full.relative_to(path)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def list_versions(model_dir: Path) -> list[int]:
    """Integer version folders under model_dir, newest first; other names are ignored."""
    try:
        entries = list(os.scandir(model_dir))
    except OSError:
        return []
    versions = [int(e.name) for e in entries if _VERSION_NAME.fullmatch(e.name) and e.is_dir()]
    return sorted(versions, reverse=True)


def load_version(path: Path, version: int, settings: Settings) -> LoadedModel:
    """Load a version, check its card against its signature and warm it up.

    Raises:
        ModelLoadError: whatever goes wrong, with the reason.
    """
    try:
        card = json.loads((path / "model_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model_card.json unreadable: {exc}") from exc
    if not isinstance(card, dict):
        raise ModelLoadError("model_card.json is not an object")
    try:
        inputs = parse_inputs(card)
    except CardError as exc:
        raise ModelLoadError(f"model card: {exc}") from exc
    currency = card.get("currency")
    if not isinstance(currency, str) or not currency:
        raise ModelLoadError("model card has no currency")
    schema = ModelSchema(
        inputs=inputs,
        currency=currency,
        limits=Limits(
            max_text_chars=settings.max_text_chars,
            max_category_chars=settings.max_category_chars,
            max_image_bytes=settings.max_image_bytes,
            max_batch_items=settings.max_batch_items,
        ),
    )
    signature_name = card.get("signature", "serving_default")
    output = card.get("output", "price")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures[signature_name]
    except Exception as exc:  # any corruption: DecodeError, NotFoundError, KeyError...
        raise ModelLoadError(f"SavedModel does not load: {type(exc).__name__}: {exc}") from exc

    _, accepted = signature.structured_input_signature
    expected = {s.name: (tf.float32 if s.role == "numeric" else tf.string) for s in inputs}
    missing = sorted(set(accepted) - set(expected))
    if missing:
        raise ModelLoadError(f"signature needs inputs the card does not list: {missing}")
    for name, dtype in expected.items():
        spec = accepted.get(name)
        if spec is None:
            raise ModelLoadError(f"card input {name!r} is not in the signature")
        if spec.dtype != dtype:
            raise ModelLoadError(f"signature input {name!r} is {spec.dtype.name}, not {dtype.name}")
    if output not in signature.structured_outputs:
        raise ModelLoadError(f"signature has no output {output!r}")

    model = LoadedModel(version, path, card, schema, signature, output, saved_model=loaded)
    warm_up(model, settings.warmup_runs)
    _attach_explanations(model)
    return model


def _attach_explanations(model: LoadedModel) -> None:
    """Read the card's range and occlusion baseline; a card without them (or with a broken one)
    still serves, without them, after a warning."""
    missing = []
    try:
        model.price_range = parse_range(model.card)
    except CardError as exc:
        logger.warning("event=range_disabled version=%s reason=%s", model.version, exc)
    try:
        occlusion = parse_occlusion(model.card, model.schema.inputs)
        if occlusion is not None:  # the baseline must price too (e.g. its photo must decode)
            prices = model.predict(occlusion.rows(model.schema.example_item(image_bytes=True)))
            if not all(math.isfinite(p) for p in prices):
                raise CardError(f"a neutral copy gave a non-finite price: {prices.tolist()}")
        model.occlusion = occlusion
    except Exception as exc:  # noqa: BLE001  # any failure only turns the contributions off
        logger.warning("event=contributions_disabled version=%s reason=%s", model.version, str(exc)[:300])
    if "interval" not in model.card:
        missing.append("interval")
    if "explain" not in model.card:
        missing.append("explain")
    if missing:
        logger.warning(
            "event=model_card_without version=%s fields=%s detail=served without %s",
            model.version,
            ",".join(missing),
            " and ".join({"interval": "a price range", "explain": "contributions"}[m] for m in missing),
        )


def warm_up(model: LoadedModel, runs: int) -> None:
    """Run a few predictions (batch sizes 1 and 2) and require finite prices."""
    row = model.schema.example_item(image_bytes=True)
    for run in range(runs):
        batch = [row] * (1 if run % 2 == 0 else 2)
        try:
            prices = model.predict(batch)
        except Exception as exc:
            raise ModelLoadError(f"warm-up failed: {type(exc).__name__}: {exc}") from exc
        if not all(math.isfinite(p) for p in prices):
            raise ModelLoadError(f"warm-up gave a non-finite price: {prices.tolist()}")


class ModelRegistry:
    """Holds the served model and swaps in newer versions found by a background thread."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._current: LoadedModel | None = None
        self._refused: dict[int, tuple[tuple[str, int, int], ...]] = {}
        self._waiting: set[int] = set()
        self._reported_empty = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The model to use for a request (take it once per request)."""
        return self._current

    def start(self) -> None:
        """Load the newest version in the background, then poll for newer ones."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="model-registry", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self.poll_once()
        interval = self.settings.reload_interval_s
        if self._current is None and interval <= 0:
            interval = 1.0  # nothing to serve yet: keep looking even with watching off
        while interval > 0 and not self._stop.wait(interval):
            self.poll_once()
            if self.settings.reload_interval_s <= 0 and self._current is not None:
                return

    def poll_once(self) -> LoadedModel | None:
        """Serve the newest loadable version above the current one; return it if swapped."""
        with self._lock:
            current = self._current.version if self._current else -1
            model_dir = self.settings.model_dir
            versions = [v for v in list_versions(model_dir) if v > current]
            if not versions and current < 0 and not self._reported_empty:
                self._reported_empty = True
                logger.warning("event=no_model model_dir=%s detail=no integer version folder yet", model_dir)
            for version in versions:
                if self._stop.is_set():
                    return None
                path = model_dir / str(version)
                if not (path / "model_card.json").is_file():
                    if version not in self._waiting:
                        self._waiting.add(version)
                        logger.info(
                            "event=model_incomplete version=%s path=%s detail=no model_card.json",
                            version,
                            path,
                        )
                    continue
                fingerprint = _fingerprint(path)
                if self._refused.get(version) == fingerprint:
                    continue
                started = time.perf_counter()
                try:
                    model = load_version(path, version, self.settings)
                except Exception as exc:  # noqa: BLE001  # whatever fails, the version is refused
                    self._refused[version] = fingerprint
                    self.metrics.model_loads.labels(result="refused").inc()
                    logger.error(
                        "event=model_refused version=%s path=%s serving=%s reason=%s",
                        version,
                        path,
                        self._current.version if self._current else "none",
                        str(exc).replace("\n", " ")[:500],
                    )
                    continue
                self._swap(model, time.perf_counter() - started)
                return model
            return None

    def _swap(self, model: LoadedModel, seconds: float) -> None:
        previous = self._current
        self._current = model  # one reference assignment: atomic for readers
        self.metrics.set_model(model.name, model.version, model.schema.currency)
        self.metrics.model_loads.labels(result="loaded").inc()
        logger.info(
            "event=model_loaded version=%s previous=%s path=%s load_s=%.2f currency=%s",
            model.version,
            previous.version if previous else "none",
            model.path,
            seconds,
            model.schema.currency,
        )
        del previous
        _freeze_heap()
