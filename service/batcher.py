"""Gathers concurrent prediction rows into one SavedModel call, run off the event loop.

Adaptive micro-batching: the batches are formed on the event loop and each call runs in one
worker thread, so the event loop never blocks on TensorFlow. A request that finds the model idle
is sent at once (its rows alone); the rows that arrive while a call runs wait for it and go
together into the next call, at most BATCH_MAX_SIZE per call. So a lone request pays no waiting, and under load the batches grow with the load.
BATCH_MAX_WAIT_MS > 0 adds a wait for company before each call (the first row waits at most that
long after it arrived): bigger batches under moderate load, for that much more latency. With
BATCH_MAX_SIZE=1 each request calls the model itself (in a worker thread, several at a time).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.metrics import Metrics
from service.model import LoadedModel, RowError

logger = logging.getLogger(__name__)

# TensorFlow errors caused by the row itself (e.g. image bytes it cannot decode).
_ROW_ERROR_NAMES = {"InvalidArgumentError"}


class BatcherClosed(RuntimeError):
    """The service is shutting down."""


@dataclass(frozen=True)
class Outcome:
    """One row's result: a price, or the error that row caused; and the size of its call. A row
    that asked for ``k`` comparables also gets their index rows and similarities."""

    price: float | None
    error: BaseException | None
    batch_size: int
    neighbours: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class _Job:
    model: LoadedModel
    row: Mapping[str, Any]
    future: asyncio.Future[Outcome]
    enqueued: float
    k: int = 0


def _op_error_text(exc: BaseException) -> str:
    """The readable part of a TensorFlow op error ("Invalid PNG data, size 259"): the line before
    the ``[[{{node ...}}]]`` marker; its first line ("Graph execution error:") says nothing."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("[[") and index > 0:
            return lines[index - 1][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def run_model(
    model: LoadedModel, rows: Sequence[Mapping[str, Any]], metrics: Metrics, ks: Sequence[int] | None = None
) -> list[Outcome]:
    """Call the model once on ``rows``; if that fails, call it row by row so that one bad row
    fails alone. ``ks``: comparables per row (0: none), searched in the same call, all the rows
    that want some in one search. Blocking: runs in a worker thread."""
    ks = list(ks) if ks is not None else [0] * len(rows)
    started = time.perf_counter()
    try:
        prices, embeddings = model.predict_embed(rows)
    except Exception as exc:
        if len(rows) > 1:
            return [out for row, k in zip(rows, ks, strict=True) for out in run_model(model, [row], metrics, [k])]
        if type(exc).__name__ in _ROW_ERROR_NAMES:
            return [Outcome(None, RowError(_op_error_text(exc)), 1)]
        logger.exception("event=model_call_failed version=%s rows=1", model.version)
        return [Outcome(None, exc, 1)]
    finally:
        metrics.inference.observe(time.perf_counter() - started)
    metrics.batch_size.observe(len(rows))
    found = _search(model, embeddings, ks)
    return [
        Outcome(float(p), None, len(rows), found.get(i))
        if math.isfinite(p)
        else Outcome(None, RowError("the model returned no finite price"), len(rows))
        for i, p in enumerate(prices)
    ]


def _search(model: LoadedModel, embeddings: np.ndarray | None, ks: Sequence[int]) -> dict[int, tuple]:
    """Row -> (index rows, similarities) of its ``k`` comparables: one search for every row
    that asked (the most any row asked for, then cut per row)."""
    wanted = [i for i, k in enumerate(ks) if k > 0]
    if not wanted or embeddings is None or model.comparables is None:
        return {}
    idx, sims = model.comparables.search(embeddings[wanted], max(ks[i] for i in wanted))
    return {i: (idx[j, : ks[i]], sims[j, : ks[i]]) for j, i in enumerate(wanted)}


class MicroBatcher:
    """Async front of the model: ``await predict(model, rows)`` gives one Outcome per row.

    No task of its own: a batch starts in ``_dispatch``, called when rows arrive, when a call
    ends and when a wait for company runs out, all on the event loop. So a lone row goes from
    the request's own task straight into the worker thread, and its result comes back in one
    event-loop callback that also starts the next batch: no queue task to wake in between (two
    event-loop turns fewer per request than a consumer task awaiting the worker).
    """

    def __init__(self, *, max_size: int, max_wait_ms: float, metrics: Metrics) -> None:
        self.max_size = max(1, max_size)
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self.enabled = self.max_size > 1
        self.metrics = metrics
        workers = 1 if self.enabled else max(2, os.cpu_count() or 2)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._pending: deque[_Job] = deque()
        self._running: list[_Job] | None = None  # the batch in the worker thread
        self._timer: asyncio.TimerHandle | None = None  # the end of a wait for company
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for job in [*(self._running or []), *self._pending]:
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the service is shutting down"))
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(
        self, model: LoadedModel, rows: Sequence[Mapping[str, Any]], ks: Sequence[int] | None = None
    ) -> list[Outcome]:
        """Price ``rows`` with ``model`` (``ks``: comparables per row, default none); chunks of at
        most BATCH_MAX_SIZE rows per call."""
        if self._closed:
            raise BatcherClosed("the service is shutting down")
        ks = list(ks) if ks is not None else [0] * len(rows)
        loop = asyncio.get_running_loop()
        if not self.enabled:
            outcomes: list[Outcome] = []
            for start in range(0, len(rows), self.max_size):
                chunk, chunk_ks = rows[start : start + self.max_size], ks[start : start + self.max_size]
                outcomes += await loop.run_in_executor(self._executor, run_model, model, chunk, self.metrics, chunk_ks)
            return outcomes
        now = loop.time()
        futures = []
        for row, k in zip(rows, ks, strict=True):
            future: asyncio.Future[Outcome] = loop.create_future()
            self._pending.append(_Job(model, row, future, now, k))
            futures.append(future)
        self._dispatch()
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _dispatch(self) -> None:
        """Start the next call if the worker is free and rows wait. With BATCH_MAX_WAIT_MS, rows
        wait for company until the first has waited that long or a batch is full; with no wait
        (the default) the call starts at once: rows that queued during the previous call, or the
        lone row that found the model idle."""
        if self._running is not None or self._closed or not self._pending:
            return
        assert self._loop is not None, "start() was not called"
        if self.max_wait_s > 0 and len(self._pending) < self.max_size:
            deadline = self._pending[0].enqueued + self.max_wait_s
            if deadline > self._loop.time():
                if self._timer is None:
                    self._timer = self._loop.call_at(deadline, self._wait_over)
                return
        batch = self._take_batch()
        if not batch:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._running = batch
        call = self._executor.submit(
            run_model, batch[0].model, [j.row for j in batch], self.metrics, [j.k for j in batch]
        )
        call.add_done_callback(self._call_done)

    def _wait_over(self) -> None:
        self._timer = None
        self._dispatch()

    def _call_done(self, call: Future[list[Outcome]]) -> None:
        """In the worker thread: hand the outcomes to the event loop (gone at shutdown)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._finish, call)
        except RuntimeError:  # the loop is closed: stop() already failed this batch
            pass

    def _finish(self, call: Future[list[Outcome]]) -> None:
        """On the loop: each job's future gets its row's outcome; the next call starts."""
        batch, self._running = self._running or [], None
        try:
            outcomes = call.result()
        except CancelledError:  # shut down before the call started
            outcomes = [Outcome(None, BatcherClosed("the service is shutting down"), len(batch))] * len(batch)
        except Exception as exc:  # noqa: BLE001  # the executor itself failed
            outcomes = [Outcome(None, exc, len(batch))] * len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if not job.future.done():
                job.future.set_result(outcome)
        self._dispatch()

    def _take_batch(self) -> list[_Job]:
        """Up to max_size live jobs from the front, all for the same model version."""
        batch: list[_Job] = []
        while self._pending and len(batch) < self.max_size:
            job = self._pending[0]
            if job.future.done():  # its request timed out or went away
                self._pending.popleft()
                continue
            if batch and job.model is not batch[0].model:
                break
            batch.append(self._pending.popleft())
        return batch
