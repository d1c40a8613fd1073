"""The micro-batcher with a fake model: gathering, bounds, order, isolation, a free event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from service.batcher import MicroBatcher
from service.metrics import Metrics
from service.registry import RowError


class FakeModel:
    """Prices a row as its ``x``; records the size of every call."""

    version = 1

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def predict(self, rows):
        self.calls.append(len(rows))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)  # stands for a blocking TensorFlow call
        if self.fail_on is not None and any(r["x"] == self.fail_on for r in rows):
            raise type("InvalidArgumentError", (Exception,), {})("cannot decode image")
        return np.array([r["x"] * 2.0 if r["x"] >= 0 else np.nan for r in rows])

    def predict_embed(self, rows):
        return self.predict(rows), None  # no comparables index


async def _with_batcher(max_size: int, max_wait_ms: float, body):
    batcher = MicroBatcher(max_size=max_size, max_wait_ms=max_wait_ms, metrics=Metrics())
    await batcher.start()
    try:
        return await body(batcher)
    finally:
        await batcher.stop()


def test_concurrent_requests_are_gathered_into_one_call_in_order() -> None:
    model = FakeModel()

    async def body(batcher):
        return await asyncio.gather(*(batcher.predict(model, [{"x": float(i)}]) for i in range(5)))

    results = asyncio.run(_with_batcher(8, 200, body))
    assert model.calls == [5]
    assert [r[0].price for r in results] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert model.threads and all(name.startswith("inference") for name in model.threads)


def test_batch_size_is_bounded_by_max_size() -> None:
    model = FakeModel()

    async def body(batcher):
        return await batcher.predict(model, [{"x": float(i)} for i in range(7)])

    outcomes = asyncio.run(_with_batcher(3, 50, body))
    assert model.calls == [3, 3, 1]
    assert [o.price for o in outcomes] == [2.0 * i for i in range(7)]
    assert [o.batch_size for o in outcomes] == [3, 3, 3, 3, 3, 3, 1]


def test_batching_off_calls_the_model_per_request() -> None:
    model = FakeModel()

    async def body(batcher):
        assert batcher.enabled is False
        return await asyncio.gather(*(batcher.predict(model, [{"x": 1.0}]) for _ in range(3)))

    asyncio.run(_with_batcher(1, 5, body))
    assert model.calls == [1, 1, 1]


def test_a_lone_row_finding_the_model_idle_is_sent_at_once() -> None:
    model = FakeModel()

    async def body(batcher):
        assert batcher.enabled is True  # no wait is not "off": rows still queue during a call
        started = time.perf_counter()
        for _ in range(5):
            await batcher.predict(model, [{"x": 1.0}])
        return time.perf_counter() - started

    elapsed = asyncio.run(_with_batcher(16, 0, body))
    assert elapsed < 0.25  # a 100 ms wait per row would take 0.5 s


def _staggered_calls(max_size: int, n: int = 12) -> list[int]:
    """``n`` one-row requests sent 10 ms apart to a model that takes 50 ms a call, no wait for
    company: the sizes of the model calls that served them (all prices checked)."""
    model = FakeModel(delay=0.05)

    async def body(batcher):
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(batcher.predict(model, [{"x": float(i)}])))
            await asyncio.sleep(0.01)
        return await asyncio.gather(*tasks)

    results = asyncio.run(_with_batcher(max_size, 0, body))
    assert [r[0].price for r in results] == [2.0 * i for i in range(n)]
    return model.calls


def assert_batched(calls: list[int], n: int) -> None:
    """Every one of the ``n`` rows served exactly once, by fewer model calls than requests."""
    assert sum(calls) == n, calls
    assert len(calls) < n, f"{n} concurrent requests took {len(calls)} model calls: not batched ({calls})"


def test_concurrent_requests_to_a_busy_model_share_its_calls() -> None:
    calls = _staggered_calls(max_size=16)
    assert_batched(calls, 12)
    assert max(calls) > 1 and calls[0] == 1  # the first found the model idle; the rest queued behind it


def test_the_batching_check_fails_when_batching_is_off() -> None:
    """The control: with BATCH_MAX_SIZE=1 the same traffic is one call per request, and the check
    above fails on it (so it can fail)."""
    calls = _staggered_calls(max_size=1)
    assert calls == [1] * 12
    with pytest.raises(AssertionError, match="not batched"):
        assert_batched(calls, 12)


def test_rows_arriving_during_a_call_go_together_into_the_next_call() -> None:
    model = FakeModel(delay=0.2)

    async def body(batcher):
        first = asyncio.create_task(batcher.predict(model, [{"x": 0.0}]))
        await asyncio.sleep(0.05)  # the first call is running
        rest = [asyncio.create_task(batcher.predict(model, [{"x": float(i)}])) for i in range(1, 6)]
        return await asyncio.gather(first, *rest)

    results = asyncio.run(_with_batcher(16, 0, body))
    assert model.calls == [1, 5]
    assert [r[0].price for r in results] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert [r[0].batch_size for r in results] == [1, 5, 5, 5, 5, 5]


def test_a_wait_gathers_rows_that_arrive_soon_after_an_idle_start() -> None:
    model = FakeModel()

    async def body(batcher):
        first = asyncio.create_task(batcher.predict(model, [{"x": 0.0}]))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(batcher.predict(model, [{"x": 1.0}]))
        return await asyncio.gather(first, second)

    asyncio.run(_with_batcher(16, 500, body))
    assert model.calls == [2]


def test_a_bad_row_fails_alone_and_a_non_finite_price_is_a_row_error() -> None:
    model = FakeModel(fail_on=3.0)

    async def body(batcher):
        return await batcher.predict(model, [{"x": 1.0}, {"x": 3.0}, {"x": -1.0}, {"x": 4.0}])

    outcomes = asyncio.run(_with_batcher(8, 5, body))
    assert [o.price for o in outcomes] == [2.0, None, None, 8.0]
    assert isinstance(outcomes[1].error, RowError)
    assert "cannot decode image" in str(outcomes[1].error)
    assert isinstance(outcomes[2].error, RowError)
    assert "no finite price" in str(outcomes[2].error)


def test_the_event_loop_keeps_running_during_a_model_call() -> None:
    model = FakeModel(delay=0.3)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def body(batcher):
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await batcher.predict(model, [{"x": 1.0}])
        stop.set()
        await task

    asyncio.run(_with_batcher(8, 1, body))
    assert ticks >= 10  # a blocked loop would tick once or twice during the 0.3 s call
