"""Deleting a collection gives its memory back (issue 16): a RAG worker process of this
test's own, the real model, Kafka and PostgreSQL.

The worker's RSS (``VmRSS``) is read after a warm-up ingest and delete (the model's and
threads' one-off allocations), after ingesting Python's own documentation topics
(``pydoc_data.topics``, about 4,000 chunks of 128 characters) and after deleting that
collection. The ingest must grow RSS measurably (else the test proves nothing), and the
delete must bring it back within 10% of the level before the ingest and give back most
of the growth. Nothing here depends on which lexical engine the index uses: only the
process's memory is read.
"""

from __future__ import annotations

import asyncio
import pydoc_data.topics
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import RagWorkers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MIB = 1024 * 1024
QUIET_SECONDS = 3.0


def rss(pid: int) -> int:
    """``VmRSS`` of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def topic_documents(prefix: str, limit: int | None = None) -> list[dict[str, str]]:
    """Python's documentation topics, in documents of about 1,000 characters."""
    documents: list[dict[str, str]] = []
    for key in sorted(pydoc_data.topics.topics):
        paragraphs = [
            re.sub(r"\s+", " ", block).strip()
            for block in re.split(r"\n\s*\n", pydoc_data.topics.topics[key])
        ]
        current = ""
        for paragraph in filter(None, paragraphs):
            current = f"{current}\n\n{paragraph}" if current else paragraph
            if len(current) >= 1_000:
                documents.append({"id": f"{prefix}{len(documents)}", "text": current})
                current = ""
        if current:
            documents.append({"id": f"{prefix}{len(documents)}", "text": current})
        if limit is not None and len(documents) >= limit:
            return documents[:limit]
    return documents


async def ingest(gateway: httpx.AsyncClient, name: str, documents: list[dict[str, str]]) -> int:
    """Create ``name`` and ingest ``documents`` (100 a request, waiting for the last);
    the collection's chunk count."""
    created = await gateway.post(
        "/v1/rag/collections", json={"name": name, "chunk_size": 128, "chunk_overlap": 16}
    )
    assert created.status_code == 201, created.text
    versions = []
    for start in range(0, len(documents), 100):
        response = await gateway.post(
            f"/v1/rag/collections/{name}/documents",
            json={"documents": documents[start : start + 100]},
        )
        assert response.status_code == 202, response.text
        versions.append(response.json()["version"])
    last = max(versions, key=lambda v: int(v.split(":")[1]))
    deadline = time.monotonic() + 600
    while True:
        outcome = await gateway.get(f"/v1/rag/collections/{name}/ingests/{last}")
        assert outcome.status_code == 200, outcome.text
        if outcome.json()["status"] != "pending":
            break
        assert time.monotonic() < deadline, "the ingest was not applied in time"
        await asyncio.sleep(1)
    assert outcome.json()["status"] == "applied", outcome.text
    # Applied by the writer; searchable once the replica applied it too.
    searched = await gateway.post(
        f"/v1/rag/collections/{name}/search",
        json={"query": "python", "k": 1, "mode": "vector", "min_version": last},
    )
    assert searched.status_code == 200, searched.text
    info = (await gateway.get(f"/v1/rag/collections/{name}")).json()
    return int(info["chunks"])


async def drop(gateway: httpx.AsyncClient, worker_url: str, name: str) -> None:
    """Delete the collection; return once the worker has dropped its index."""
    deleted = await gateway.delete(f"/v1/rag/collections/{name}")
    assert deleted.status_code == 200, deleted.text
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as client:
        while any(
            line.startswith("x0_rag_index_size{") and f'collection="{name}"' in line
            for line in (await client.get(f"{worker_url}/metrics")).text.splitlines()
        ):
            assert time.monotonic() < deadline, "the index was not dropped"
            await asyncio.sleep(0.2)


async def test_deleting_a_collection_gives_its_memory_back(
    rag_workers: RagWorkers, rag_gateway: httpx.AsyncClient
) -> None:
    worker = rag_workers.replica("memory")
    worker.environment["X0_RAG_TORCH_THREADS"] = "2"
    await asyncio.to_thread(worker.start)
    assert worker._executor is not None
    assert worker._executor.process is not None
    pid = worker._executor.process.pid
    run = uuid.uuid4().hex[:8]

    warm = f"e2e-mem-warm-{run}"
    await ingest(rag_gateway, warm, topic_documents("w", limit=100))
    await drop(rag_gateway, worker.url, warm)
    await asyncio.sleep(QUIET_SECONDS)
    before = rss(pid)

    name = f"e2e-mem-{run}"
    chunks = await ingest(rag_gateway, name, topic_documents("d"))
    await asyncio.sleep(QUIET_SECONDS)
    after = rss(pid)
    await drop(rag_gateway, worker.url, name)
    await asyncio.sleep(QUIET_SECONDS)
    deleted = rss(pid)

    growth = after - before
    report = (
        f"{chunks} chunks: RSS {before / MIB:.0f} -> {after / MIB:.0f} -> {deleted / MIB:.0f} MiB"
    )
    assert chunks >= 3_000, report
    assert growth >= 20 * MIB, f"the ingest must grow RSS measurably: {report}"
    assert deleted <= before * 1.10, report
    assert after - deleted >= 0.5 * growth, f"less than half of the growth came back: {report}"
