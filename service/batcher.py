"""Gathers concurrent prediction rows into one SavedModel call, run off the event loop.

Adaptive micro-batching: a single consumer task forms the batches and runs each call in one
worker thread, so the event loop never blocks on TensorFlow. A row that finds the model idle is
sent at once (alone, unless others arrived in the same event-loop turn); the rows that arrive
while a call runs wait for it and go together into the next call, at most BATCH_MAX_SIZE per
call. So a lone request pays no waiting, and under load the batches grow with the load.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from service.metrics import Metrics
from service.model import LoadedModel, RowError

logger = logging.getLogger(__name__)

# TensorFlow errors caused by the row itself (e.g. image bytes it cannot decode).
_ROW_ERROR_NAMES = {"InvalidArgumentError"}


class BatcherClosed(RuntimeError):
    """The service is shutting down."""


@dataclass(frozen=True)
class Outcome:
    """One row's result: a price, or the error that row caused; and the size of its call."""

    price: float | None
    error: BaseException | None
    batch_size: int


@dataclass
class _Job:
    model: LoadedModel
    row: Mapping[str, Any]
    future: asyncio.Future[Outcome]
    enqueued: float


def _op_error_text(exc: BaseException) -> str:
    """The readable part of a TensorFlow op error ("Invalid PNG data, size 259"): the line before
    the ``[[{{node ...}}]]`` marker; its first line ("Graph execution error:") says nothing."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("[[") and index > 0:
            return lines[index - 1][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def run_model(model: LoadedModel, rows: Sequence[Mapping[str, Any]], metrics: Metrics) -> list[Outcome]:
    """Call the model once on ``rows``; if that fails, call it row by row so that one bad row
    fails alone. Blocking: runs in a worker thread."""
    started = time.perf_counter()
    try:
        prices = model.predict(rows)
    except Exception as exc:
        if len(rows) > 1:
            return [out for row in rows for out in run_model(model, [row], metrics)]
        if type(exc).__name__ in _ROW_ERROR_NAMES:
            return [Outcome(None, RowError(_op_error_text(exc)), 1)]
        logger.exception("event=model_call_failed version=%s rows=1", model.version)
        return [Outcome(None, exc, 1)]
    finally:
        metrics.inference.observe(time.perf_counter() - started)
    metrics.batch_size.observe(len(rows))
    return [
        Outcome(float(p), None, len(rows))
        if math.isfinite(p)
        else Outcome(None, RowError("the model returned no finite price"), len(rows))
        for p in prices
    ]


class MicroBatcher:
    """Async front of the model: ``await predict(model, rows)`` gives one Outcome per row."""

    def __init__(self, *, max_size: int, max_wait_ms: float, metrics: Metrics) -> None:
        self.max_size = max(1, max_size)
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self.enabled = self.max_size > 1
        self.metrics = metrics
        workers = 1 if self.enabled else max(2, os.cpu_count() or 2)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._pending: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        if self.enabled:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._consume(), name="batcher")

    async def stop(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the service is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, model: LoadedModel, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        """Price ``rows`` with ``model``; chunks of at most BATCH_MAX_SIZE rows per call."""
        if self._closed:
            raise BatcherClosed("the service is shutting down")
        loop = asyncio.get_running_loop()
        if not self.enabled:
            outcomes: list[Outcome] = []
            for start in range(0, len(rows), self.max_size):
                chunk = rows[start : start + self.max_size]
                outcomes += await loop.run_in_executor(self._executor, run_model, model, chunk, self.metrics)
            return outcomes
        now = loop.time()
        futures = []
        for row in rows:
            future: asyncio.Future[Outcome] = loop.create_future()
            self._pending.append(_Job(model, row, future, now))
            futures.append(future)
        assert self._wakeup is not None
        self._wakeup.set()
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def _consume(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._wait_for_company()
            batch = self._take_batch()
            if batch:
                await self._run_batch(batch)

    async def _wait_for_company(self) -> None:
        """With BATCH_MAX_WAIT_MS, let more rows join until the first row has waited that long.
        With no wait (the default) the call starts at once: rows that queued during the previous
        call, or the lone row that found the model idle."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        deadline = self._pending[0].enqueued + self.max_wait_s
        while self.max_wait_s > 0 and len(self._pending) < self.max_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _run_batch(self, batch: list[_Job]) -> None:
        """One model call in the worker thread; each job's future gets its row's outcome."""
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(
                self._executor, run_model, batch[0].model, [j.row for j in batch], self.metrics
            )
        except asyncio.CancelledError:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(BatcherClosed("the service is shutting down"))
            raise
        except Exception as exc:  # noqa: BLE001  # the executor itself failed
            outcomes = [Outcome(None, exc, len(batch))] * len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if not job.future.done():
                job.future.set_result(outcome)

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
