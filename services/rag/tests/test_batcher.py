"""DynamicBatcher with the real model: shared calls, own rows, errors, closing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.domain import Unavailable

pytestmark = pytest.mark.unit


class Recorder:
    """Wraps the model: counts calls, notes their sizes and threads, can fail on demand."""

    def __init__(self, embedder: Embedder, *, fail_on: str | None = None) -> None:
        self.embedder = embedder
        self.fail_on = fail_on
        self.calls: list[int] = []
        self.texts: list[list[str]] = []
        self.threads: set[int] = set()
        self.active = 0
        self.max_active = 0

    def __call__(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(len(texts))
            self.texts.append(list(texts))
            self.threads.add(threading.get_ident())
            if self.fail_on is not None and self.fail_on in texts:
                raise ValueError(f"model failed on {self.fail_on!r}")
            return self.embedder.embed(texts)
        finally:
            self.active -= 1


def _texts(caller: int) -> list[str]:
    return [f"caller {caller} asks about topic {i}" for i in range(1 + caller % 3)]


async def test_concurrent_callers_share_model_calls_and_get_their_own_rows(
    embedder: Embedder,
) -> None:
    model = Recorder(embedder)
    async with DynamicBatcher(model, max_batch=64, linger_ms=5) as batcher:
        results = await asyncio.gather(*(batcher.embed(_texts(i)) for i in range(30)))
    assert sum(model.calls) == sum(len(_texts(i)) for i in range(30)) == 60
    assert len(model.calls) < 30 // 2  # one call served many callers
    assert max(model.calls) <= 64
    for caller, rows in enumerate(results):
        np.testing.assert_allclose(rows, embedder.embed(_texts(caller)), atol=1e-5)
    assert len(model.threads) == 1
    assert threading.get_ident() not in model.threads
    assert model.max_active == 1


async def test_max_batch_bounds_every_call_and_big_requests_are_split(
    embedder: Embedder,
) -> None:
    model = Recorder(embedder)
    big = [f"paragraph {i} about vector search" for i in range(23)]
    async with DynamicBatcher(model, max_batch=8, linger_ms=1) as batcher:
        rows, *small = await asyncio.gather(
            batcher.embed(big), *(batcher.embed([f"query {i}"]) for i in range(5))
        )
    assert max(model.calls) <= 8
    assert sum(model.calls) == 28
    np.testing.assert_allclose(rows, embedder.embed(big), atol=1e-5)
    for i, row in enumerate(small):
        np.testing.assert_allclose(row, embedder.embed([f"query {i}"]), atol=1e-5)


async def test_a_failing_call_fails_exactly_its_callers(embedder: Embedder) -> None:
    model = Recorder(embedder, fail_on="boom")
    async with DynamicBatcher(model, max_batch=2, linger_ms=50) as batcher:
        # FIFO with 2 texts per call: {a, boom} then {c, d}.
        outcomes = await asyncio.gather(
            batcher.embed(["a"]),
            batcher.embed(["boom"]),
            batcher.embed(["c"]),
            batcher.embed(["d"]),
            return_exceptions=True,
        )
        assert model.calls == [2, 2]
        assert isinstance(outcomes[0], ValueError)
        assert isinstance(outcomes[1], ValueError)
        assert isinstance(outcomes[2], np.ndarray)
        assert isinstance(outcomes[3], np.ndarray)
        # The batcher keeps serving after a failure.
        again = await batcher.embed(["a"])
    np.testing.assert_allclose(again, embedder.embed(["a"]), atol=1e-5)


async def test_the_event_loop_keeps_running_during_inference(embedder: Embedder) -> None:
    paragraphs = [
        f"Paragraph {i}. " + "Kafka heartbeats must keep flowing. " * 30 for i in range(24)
    ]
    gaps: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with DynamicBatcher(embedder.embed, max_batch=24) as batcher:
        beating = asyncio.create_task(heartbeat())
        started = time.perf_counter()
        await batcher.embed(paragraphs)
        took = time.perf_counter() - started
        done.set()
        await beating
    assert took > 0.3  # long enough that a blocked loop would show
    assert len(gaps) > 10
    assert max(gaps) < took / 2


async def test_cancelled_caller_costs_no_model_time(embedder: Embedder) -> None:
    model = Recorder(embedder)
    async with DynamicBatcher(model, max_batch=4, linger_ms=200) as batcher:
        waiting = asyncio.create_task(batcher.embed(["never needed"]))
        await asyncio.sleep(0)  # queued, lingering
        waiting.cancel()
        rows = await batcher.embed(["x", "y", "z", "w"])  # fills the batch: no linger
    assert rows.shape == (4, 384)
    assert model.calls == [4]
    assert waiting.cancelled()


async def test_close_drains_queued_work(embedder: Embedder) -> None:
    model = Recorder(embedder)
    batcher = DynamicBatcher(model, max_batch=2, linger_ms=1)
    pending = [asyncio.create_task(batcher.embed([f"t{i}"])) for i in range(6)]
    await asyncio.sleep(0)
    await batcher.close()
    assert all(task.result().shape == (1, 384) for task in pending)
    with pytest.raises(Unavailable):
        await batcher.embed(["late"])
    await batcher.close()  # idempotent


async def test_close_without_drain_fails_what_is_queued(embedder: Embedder) -> None:
    slow_started = threading.Event()

    def slow(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        slow_started.set()
        time.sleep(0.2)
        return embedder.embed(list(texts))

    batcher = DynamicBatcher(slow, max_batch=1, linger_ms=0)
    running = asyncio.create_task(batcher.embed(["first"]))
    queued = asyncio.create_task(batcher.embed(["second"]))
    await asyncio.to_thread(slow_started.wait, 5)
    await batcher.close(drain=False)
    for task in (running, queued):
        with pytest.raises(Unavailable):
            await task


async def test_empty_and_bad_arguments(embedder: Embedder) -> None:
    async with DynamicBatcher(embedder.embed) as batcher:
        assert (await batcher.embed([])).shape == (0, 384)
    with pytest.raises(ValueError, match="max_batch"):
        DynamicBatcher(embedder.embed, max_batch=0)


class Gate:
    """Wraps the model: each call notes its texts, and the first one waits for ``release``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.calls: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.first_started.set()
            self.release.wait(5)
        return self.embedder.embed(texts)


async def test_a_query_does_not_wait_for_ingest_chunks(embedder: Embedder) -> None:
    model = Gate(embedder)
    chunks = [f"chunk {i} of a long ingest" for i in range(12)]
    query = ["what is a consumer group?"]
    async with DynamicBatcher(model, max_batch=64, background_batch=4) as batcher:
        ingest = asyncio.create_task(batcher.embed_background(chunks))
        await asyncio.to_thread(model.first_started.wait, 5)  # chunks 0-3 in the model
        # The query is answered while that ingest call is still running.
        query_rows = await asyncio.wait_for(batcher.embed(query), timeout=2)
        assert not ingest.done()
        model.release.set()
        rows = await ingest
    # No ingest call started while the query waited or ran; each took 4 chunks.
    assert model.calls == [chunks[0:4], query, chunks[4:8], chunks[8:12]]
    np.testing.assert_allclose(rows, embedder.embed(chunks), atol=1e-5)
    np.testing.assert_allclose(query_rows, embedder.embed(query), atol=1e-5)


async def test_ingest_calls_wait_while_queries_run(embedder: Embedder) -> None:
    model = Recorder(embedder)
    chunks = [f"chunk {i}" for i in range(8)]
    queries = [[f"query {i}"] for i in range(6)]
    async with DynamicBatcher(model, max_batch=2, background_batch=2) as batcher:
        results = await asyncio.gather(
            *(batcher.embed(q) for q in queries), batcher.embed_background(chunks)
        )
    # The three query calls of two went first, then the four ingest calls of two.
    assert model.texts == [
        *([f"query {i}", f"query {i + 1}"] for i in range(0, 6, 2)),
        *(chunks[i : i + 2] for i in range(0, 8, 2)),
    ]
    assert model.max_active == 1
    np.testing.assert_allclose(results[-1], embedder.embed(chunks), atol=1e-5)


async def test_an_idle_batcher_does_not_linger(embedder: Embedder) -> None:
    async with DynamicBatcher(embedder.embed, linger_ms=100) as batcher:
        await batcher.embed(["warm-up"])
        await asyncio.sleep(0.2)  # idle again
        started = time.perf_counter()
        await batcher.embed(["a single query"])
        took = time.perf_counter() - started
    # A single sentence takes ~10 ms on these machines; a linger would add 100 ms.
    assert took < 0.09
