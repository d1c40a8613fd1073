"""Finds, loads, warms up and swaps model versions under MODEL_DIR.

A version is a folder named by a plain integer holding a SavedModel and its model_card.json
(docs/contract.md). The newest version that loads and warms up (``service.model``) is served;
requests take a reference to the served ``LoadedModel`` once, so a swap never fails a request in
flight.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path

from common.files import versions
from service.metrics import Metrics
from service.model import LoadedModel, ModelLoadError, RowError, load_version
from service.settings import Settings

__all__ = ["LoadedModel", "ModelLoadError", "ModelRegistry", "RowError", "list_versions", "load_version"]

logger = logging.getLogger(__name__)


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
    return versions(model_dir)[::-1]


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
