"""Section ``rag_ingest``: RAG search latency while an ingest of 5,000 documents runs.

One gateway and one RAG worker (processes, as in production; the worker's default
``torch_threads``). A collection gets ``SEED_DOCS`` documents first, so that searches
have something to find. Then, one search at a time through the gateway (vector,
k=10, each query a distinct sentence from text that is not ingested, its cached
embedding deleted from Redis first so the model runs):

1. idle: ``IDLE_SEARCHES`` searches;
2. during the ingest: ``INGEST_DOCS`` documents go to the same collection in messages
   of ``DOCS_PER_MESSAGE``, 4 in flight, and searches run back to back until the
   collection holds every chunk (polled every ``POLL_SECONDS``; only searches that
   started and ended inside the ingest count);
3. idle again: ``IDLE_SEARCHES`` more.

Record ``rag_ingest.search.p50``: the p50 during the ingest against the p50 of both
idle phases of the same run (target: at most 2 times). The worker's embedding batcher
gives query texts priority over ingest chunks and runs ingest chunks in small model
calls (``X0_RAG_EMBED_BACKGROUND_BATCH``), so a query waits for at most one of them.

Documents: single paragraphs of Python's ``pydoc_data.topics`` and the English man
pages (as ``bench.rag`` reads them), cut to at most ``DOC_CHARS`` characters, so each
is one chunk of the writer's 256-character chunking: 5,000 documents, 5,000 chunks.
"""

from __future__ import annotations

import os

# Before numpy or torch load: their thread pools would fight over the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import asyncio
import random
import re
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Final

import httpx

from bench.harness import percentile, profiled
from bench.rag import (
    CHUNK_OVERLAP,
    CHUNK_SIZE,
    PUBLISH_CONCURRENCY,
    Doc,
    Run,
    _ok,
    _paragraphs,
    _sources,
    create_collection,
    drop_collection_rows,
    forget_query_embeddings,
    ingest,
    search_latencies,
)
from bench.report import Record
from x0_common.settings import CommonSettings
from x0_common.testing.processes import service
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key
from x0_rag.domain.chunking import chunk_text
from x0_rag.settings import RagSettings

INGEST_DOCS: Final = 5_000
SEED_DOCS: Final = 200
DOC_CHARS: Final = 250  # one chunk each with chunk_size 256
DOCS_PER_MESSAGE: Final = 50
IDLE_SEARCHES: Final = 60  # before the ingest, and as many after it
MAX_SEARCHES: Final = 2_000  # during the ingest, at most
WARMUP_SEARCHES: Final = 10
TARGET: Final = "<= 2.0"
SEED: Final = 20_251_206
POLL_SECONDS: Final = 0.5


def corpus() -> tuple[list[Doc], list[str]]:
    """``SEED_DOCS + INGEST_DOCS`` one-chunk documents, and query sentences from other text."""
    paragraphs: dict[str, str] = {}
    queries: dict[str, None] = {}
    wanted_queries = WARMUP_SEARCHES + 2 * IDLE_SEARCHES + MAX_SEARCHES
    for name, _, text in _sources():
        for number, paragraph in enumerate(_paragraphs(text)):
            if len(paragraphs) < SEED_DOCS + INGEST_DOCS:
                if len(paragraph) >= 80:
                    paragraphs.setdefault(paragraph[:DOC_CHARS], f"{name}#{number}"[:256])
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
                letters = sum(char.isalpha() for char in sentence)
                if 40 <= len(sentence) <= 200 and letters > 0.7 * len(sentence):
                    queries[sentence] = None
        if len(queries) >= wanted_queries:
            break
    docs = [
        Doc(doc_id, text, "bench", chunk_text(text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP))
        for text, doc_id in paragraphs.items()
    ]
    sentences = sorted(set(queries) - set(paragraphs))
    random.Random(SEED).shuffle(sentences)
    return docs, sentences[:wanted_queries]


async def ingest_until_stored(
    client: httpx.AsyncClient, collection: str, messages: list[list[Doc]], chunks: int
) -> None:
    """Publish ``messages`` through the gateway (``PUBLISH_CONCURRENCY`` in flight), then
    poll the collection until it holds ``chunks`` chunks (every one embedded and written).
    Not a search with ``min_version``: that one waits in the worker's query lane and
    would hold up the searches being measured behind it."""
    path = f"/v1/rag/collections/{collection}/documents"
    gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def send(message: list[Doc]) -> None:
        async with gate:
            _ok(await client.post(path, json={"documents": [d.body for d in message]}), 202)

    await asyncio.gather(*(send(message) for message in messages))
    info = f"/v1/rag/collections/{collection}"
    while _ok(await client.get(info), 200)["chunks"] < chunks:  # noqa: ASYNC110 - another process
        await asyncio.sleep(POLL_SECONDS)


async def searches_during(
    client: httpx.AsyncClient,
    collection: str,
    sentences: Sequence[str],
    ingest: asyncio.Task[object],
) -> list[float]:
    """Searches back to back while ``ingest`` runs; the latencies of those inside it."""
    latencies: list[float] = []
    for sentence in sentences:
        if ingest.done():
            break
        (latency,) = await search_latencies(client, collection, [sentence])
        if not ingest.done():
            latencies.append(latency)
    return latencies


async def run(settings: CommonSettings) -> list[Record]:
    """Measure and return the record."""
    docs, sentences = corpus()
    seed, ingested = docs[:SEED_DOCS], docs[SEED_DOCS:]
    chunks = sum(len(doc.chunks) for doc in ingested)
    warmup, sentences = sentences[:WARMUP_SEARCHES], sentences[WARMUP_SEARCHES:]
    before, after = sentences[:IDLE_SEARCHES], sentences[IDLE_SEARCHES : 2 * IDLE_SEARCHES]
    during_sentences = sentences[2 * IDLE_SEARCHES :]
    run_ids = Run()
    collection = run_ids.collection
    key = await provision_key(
        settings.postgres, GatewaySettings().pepper(), scopes={"rag:read", "rag:write"}
    )
    gateway_environment = {
        "X0_GATEWAY_REPLICA_ID": f"bench-{run_ids.run_id}",
        "X0_GATEWAY_METRICS_PORT": "0",
    }
    rag = RagSettings()
    deleted = False
    try:
        async with AsyncExitStack() as stack:
            gateway = stack.enter_context(
                service(
                    "x0_gateway", environment=gateway_environment, port_variable="X0_GATEWAY_PORT"
                )
            )
            worker = stack.enter_context(
                service(
                    "x0_rag",
                    environment=run_ids.worker_environment(run_ids.root / "snapshots"),
                    port_variable="X0_RAG_PORT",
                    timeout=900,
                )
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=gateway.url,
                    timeout=60,
                    headers={"Authorization": f"Bearer {key.key}"},
                )
            )
            await create_collection(client, collection)
            await ingest(
                client,
                collection,
                [seed[i : i + DOCS_PER_MESSAGE] for i in range(0, len(seed), DOCS_PER_MESSAGE)],
            )
            await forget_query_embeddings(settings.redis.url.get_secret_value(), sentences + warmup)
            await search_latencies(client, collection, warmup)

            idle = await search_latencies(client, collection, before)
            messages = [
                ingested[i : i + DOCS_PER_MESSAGE]
                for i in range(0, len(ingested), DOCS_PER_MESSAGE)
            ]
            started = time.perf_counter()
            total = chunks + sum(len(doc.chunks) for doc in seed)
            running: asyncio.Task[object] = asyncio.create_task(
                ingest_until_stored(client, collection, messages, total)
            )
            pids = {"gateway": gateway.process.pid, "rag": worker.process.pid}
            with profiled({f"rag_ingest-{name}": pid for name, pid in pids.items()}):
                during = await searches_during(client, collection, during_sentences, running)
            await running
            ingest_seconds = time.perf_counter() - started
            idle += await search_latencies(client, collection, after)
            _ok(await client.delete(f"/v1/rag/collections/{collection}"), 200)
            deleted = True
    finally:
        if not deleted:
            await drop_collection_rows(settings.postgres.dsn.get_secret_value(), collection)

    if len(during) < 20:
        msg = f"only {len(during)} searches ran during the ingest: too few for a p50"
        raise RuntimeError(msg)
    idle_p50, idle_p99 = (percentile(idle, q) * 1e3 for q in (0.5, 0.99))
    busy_p50, busy_p99 = (percentile(during, q) * 1e3 for q in (0.5, 0.99))
    print(
        f"ingest: {len(ingested)} documents ({chunks} chunks, <= {DOC_CHARS} characters each) "
        f"in {len(messages)} messages, {ingest_seconds:.1f} s -> {chunks / ingest_seconds:.0f} "
        f"chunks/s (torch_threads {rag.torch_threads}, embed_background_batch "
        f"{rag.embed_background_batch})\n"
        f"search (vector, k=10, concurrency 1, distinct queries), p50 / p99 in ms:\n"
        f"  idle ({len(idle)} searches, before and after)  {idle_p50:7.2f} / {idle_p99:7.2f}\n"
        f"  during the ingest ({len(during)} searches)     {busy_p50:7.2f} / {busy_p99:7.2f}",
        flush=True,
    )
    return [
        Record(
            name="rag_ingest.search.p50",
            value=busy_p50,
            unit="ms",
            baseline="search p50 idle, same run (before and after the ingest)",
            baseline_value=idle_p50,
            target=TARGET,
        )
    ]
