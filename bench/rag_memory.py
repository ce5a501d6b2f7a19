"""Section ``rag_memory``: the RAG worker's resident memory per 10,000 chunks, and how much
of it deleting the collection gives back.

One RAG worker process (query and writer groups of its own, starting at the end of
their topics; its own replica id and snapshot folder). Its RSS is ``VmRSS`` of
``/proc/<pid>/status``, read after 3 s of quiet (the writer, the index and the snapshot
timer idle):

1. Warm-up: a small collection is ingested, searched and deleted, so that the model's,
   tokenizer's and threads' one-off allocations happen before the baseline. RSS
   **before**.
2. A collection of ``X0_BENCH_RAG_MEMORY_CHUNKS`` chunks (default 20,000) is ingested
   the way upstream producers do (``UpsertDocuments`` on ``x0.rag.ingest``, 100
   documents a message, 4 messages in flight): the writer chunks, embeds (the real
   model) and stores them; the replica applies the index events (vectors, words,
   metadata). Once the last version is applied (``VERSION_WAIT``): RSS **after**.
3. The collection is deleted (``COLLECTION_DELETE``: rows, then the drop marker, then
   every replica drops the index). Once the worker's ``x0_rag_index_size`` series for
   it is gone: RSS **deleted**.

Printed: the three RSS figures, MiB per 10,000 chunks ((after - before) / chunks), and
the share of that growth the delete gave back ((after - deleted) / (after - before)).
Records: ``rag.memory.per_10k_chunks`` against the hnswlib vectors' own size per 10,000
chunks (384 float32 plus the level-0 links of M=16, the floor of any in-memory index of
these vectors), and ``rag.memory.returned`` against the growth (target: at least 0.9).

Text: Python's ``pydoc_data.topics`` and the English man pages, as section ``rag``
reads them (:mod:`bench.rag`), chunked with the collection's chunk_size 256 and overlap
32. The worker embeds with ``X0_RAG_TORCH_THREADS=2`` so the run takes minutes, not tens
of them; memory per chunk does not depend on it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.rag import _documents, _sources
from bench.report import Record
from x0_common.contract import Rag
from x0_common.errors import DeadlineExceeded
from x0_common.events.rag import (
    INGEST_TOPIC,
    REQUESTS_TOPIC,
    CollectionNameRequest,
    CreateCollectionRequest,
    Document,
    UpsertDocuments,
    VersionWaitRequest,
)
from x0_common.kafka import Requester
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.settings import CommonSettings
from x0_common.testing.kafka import commit_at_end
from x0_common.testing.principals import principal_header
from x0_common.testing.processes import service
from x0_rag.domain.chunking import chunk_text

CHUNKS: Final = int(os.environ.get("X0_BENCH_RAG_MEMORY_CHUNKS", "20000"))
WARM_UP_CHUNKS: Final = 500
CHUNK_SIZE: Final = 256
CHUNK_OVERLAP: Final = 32
PER_MESSAGE: Final = 100
IN_FLIGHT: Final = 4
QUIET_SECONDS: Final = 3.0
MIB: Final = 1024 * 1024
# hnswlib per element: the vector, level-0 links (2*M ids + a count) and the label.
HNSW_BYTES_PER_CHUNK: Final = 384 * 4 + (2 * 16 + 1) * 4 + 8


def rss_bytes(pid: int) -> int:
    """The process's resident set size (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    msg = f"no VmRSS for pid {pid}"
    raise RuntimeError(msg)


def documents(chunks: int, prefix: str) -> list[Document]:
    """Real documents (pydoc topics, man pages) holding about ``chunks`` chunks."""
    taken: list[Document] = []
    total = 0
    for name, source, text in _sources():
        for _, doc_text in _documents(text, name):
            taken.append(
                Document(id=f"{prefix}{len(taken)}", text=doc_text, metadata={"source": source})
            )
            total += len(chunk_text(doc_text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP))
            if total >= chunks:
                return taken
    msg = f"only {total} chunks of text found"
    raise RuntimeError(msg)


def batches(items: list[Document], size: int) -> Iterator[list[Document]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Worker:
    """Requests to and ingests for the worker under measurement, as a producer sends them."""

    def __init__(self, requester: Requester, url: str) -> None:
        self.requester = requester
        self.url = url
        self.principal = principal_header()

    async def call(self, row: object, payload: object, timeout: float = 60.0) -> dict:
        return await self.requester.request(
            REQUESTS_TOPIC,
            row.message_type,  # type: ignore[attr-defined]
            payload,  # type: ignore[arg-type]
            timeout=timeout,
            principal=self.principal,
        )

    async def ingest(self, collection: str, docs: list[Document]) -> str:
        """Publish ``docs`` (4 messages in flight); wait until the last is applied."""
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def send(message: list[Document]) -> str:
            async with gate:
                return await self.requester.publish(
                    INGEST_TOPIC,
                    Rag.UPSERT.message_type,
                    UpsertDocuments(collection=collection, documents=message),
                    key=collection,
                    principal=self.principal,
                )

        versions = await asyncio.gather(*(send(m) for m in batches(docs, PER_MESSAGE)))
        last = max(versions, key=lambda v: int(v.split(":")[1]))
        while True:
            try:
                await self.call(Rag.VERSION_WAIT, VersionWaitRequest(version=last))
                return last
            except DeadlineExceeded:
                continue  # the worker bounds each wait; ask again

    async def index_sizes(self) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"{self.url}/metrics")).text
        return {
            sample.labels.get("collection", ""): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "x0_rag_index_size"
        }

    async def drop(self, collection: str) -> None:
        """Delete the collection; return once this replica has dropped its index."""
        await self.call(Rag.COLLECTION_DELETE, CollectionNameRequest(name=collection))
        deadline = time.monotonic() + 120
        while collection in await self.index_sizes():
            if time.monotonic() > deadline:
                msg = f"the index of {collection} was not dropped"
                raise RuntimeError(msg)
            await asyncio.sleep(0.2)


async def quiet_rss(pid: int) -> int:
    await asyncio.sleep(QUIET_SECONDS)
    return rss_bytes(pid)


async def run(settings: CommonSettings) -> list[Record]:
    """Measure; see the module's steps."""
    run_id = uuid.uuid4().hex[:8]
    query, writer = f"x0-rag-queries-mem-{run_id}", f"x0-rag-writer-mem-{run_id}"
    bootstrap = settings.kafka.bootstrap_servers
    await commit_at_end(bootstrap, {query: REQUESTS_TOPIC, writer: INGEST_TOPIC})
    environment = {
        **os.environ,
        "X0_RAG_QUERY_GROUP_ID": query,
        "X0_RAG_WRITER_GROUP_ID": writer,
        "X0_RAG_REPLICA_ID": f"bench-mem-{run_id}",
        "X0_RAG_SNAPSHOT_DIR": tempfile.mkdtemp(prefix="x0-bench-rag-memory-"),
        "X0_RAG_TORCH_THREADS": "2",
        "X0_LOG_LEVEL": "WARNING",
    }
    warm_docs = documents(WARM_UP_CHUNKS, "warm-")
    docs = documents(CHUNKS, "doc-")
    requester = Requester(
        settings.kafka,
        # Under the gateway's reply prefix: the worker's identity may answer only there.
        reply_topic=f"x0.gateway.replies.bench-rag-memory-{run_id}",
        metrics=RequesterMetrics(new_registry(), "bench"),
    )
    with service(
        "x0_rag", environment=environment, port_variable="X0_RAG_PORT", timeout=900
    ) as process:
        await requester.start()
        try:
            worker = Worker(requester, process.url)
            pid = process.process.pid
            started = rss_bytes(pid)
            for name, batch in ((f"mem-warm-{run_id}", warm_docs),):
                await worker.call(
                    Rag.COLLECTION_CREATE,
                    CreateCollectionRequest(
                        name=name, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP
                    ),
                )
                await worker.ingest(name, batch)
                await worker.drop(name)
            before = await quiet_rss(pid)
            name = f"mem-{run_id}"
            await worker.call(
                Rag.COLLECTION_CREATE,
                CreateCollectionRequest(
                    name=name, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP
                ),
            )
            ingest_started = time.perf_counter()
            await worker.ingest(name, docs)
            seconds = time.perf_counter() - ingest_started
            chunks = int((await worker.index_sizes())[name])
            after = await quiet_rss(pid)
            await worker.drop(name)
            deleted = await quiet_rss(pid)
        finally:
            await requester.stop()
    growth = after - before
    per_10k = growth / chunks * 10_000
    returned = (after - deleted) / growth if growth > 0 else 0.0
    print(
        f"rag worker RSS: at start {started / MIB:.0f} MiB, after warm-up {before / MIB:.0f}"
        f" MiB; {chunks} chunks ingested in {seconds:.0f} s -> {after / MIB:.0f} MiB"
        f" (+{growth / MIB:.1f} MiB, {per_10k / MIB:.1f} MiB per 10,000 chunks);"
        f" collection deleted -> {deleted / MIB:.0f} MiB ({returned:.0%} of the growth"
        f" given back; {(deleted - before) / MIB:+.1f} MiB against before)",
        flush=True,
    )
    return [
        Record(
            name="rag.memory.per_10k_chunks",
            value=per_10k / MIB,
            unit="MiB",
            baseline="hnswlib vectors + level-0 links per 10k chunks",
            baseline_value=HNSW_BYTES_PER_CHUNK * 10_000 / MIB,
            target="<= 4.0",
        ),
        Record(
            name="rag.memory.returned",
            value=(after - deleted) / MIB,
            unit="MiB",
            baseline="RSS growth of the ingest",
            baseline_value=growth / MIB,
            target=">= 0.9",
        ),
    ]
