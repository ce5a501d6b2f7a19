"""A RAG worker SIGKILLed in the middle of an ingest loses nothing and writes nothing twice.

5,000 documents go in through the gateway in batches of 100, each answered 202 with
a version token. While the worker's writer is part-way through the first half, the
worker is killed (no shutdown hook, no offset commit, no snapshot), the second half
is sent while a new process starts, and then every acknowledged document must be in
PostgreSQL at its acknowledged version, searchable through the restarted replica's
index, counted exactly once, and the index must hold exactly the database's chunks.

The worker has query and writer groups of its own. Workers of other groups on the
same broker (the session's ``rag_worker``) consume the same topics too: they may
answer the gateway first, and their writers race this one's, which the writer's
``rag.ingest_progress`` makes harmless; the checks below hold either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

pytestmark = pytest.mark.e2e

BATCHES = 50
BATCH_SIZE = 100
DOCUMENTS = BATCHES * BATCH_SIZE
# The writer has stored at least this many documents, and is still busy, when it dies.
KILL_AFTER_DOCUMENTS = 300

VOCABULARY = (
    "river stone lantern harbor copper meadow signal orbit velvet canyon ember glacier "
    "thunder willow compass falcon marble prism saddle quartz tundra violet walnut "
    "beacon cobalt dune fjord garnet horizon ivory jasper kelp lagoon mosaic nectar"
)


def batch_of(number: int) -> list[dict[str, Any]]:
    """Short documents (one chunk each) with distinct texts; metadata names the batch."""
    rng, words = random.Random(number), VOCABULARY.split()
    return [
        {
            "id": f"doc-{number:02d}-{i:03d}",
            "text": f"Record {number}-{i}: " + " ".join(rng.choices(words, k=12)) + ".",
            "metadata": {"batch": number, "i": i},
        }
        for i in range(BATCH_SIZE)
    ]


async def ingest(gateway: httpx.AsyncClient, name: str, documents: list[dict[str, Any]]) -> str:
    """Upsert one batch; its version token once the gateway acknowledged it (202).

    A caller that gets 503/504 (no worker answered yet) sends the batch again, as any
    client would; only a 202 counts as acknowledged.
    """
    deadline = time.monotonic() + 150
    while True:
        response = await gateway.post(
            f"/v1/rag/collections/{name}/documents", json={"documents": documents}
        )
        if response.status_code == 202:
            return str(response.json()["version"])
        assert response.status_code in (503, 504), response.text
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.5)


async def documents_stored(database: asyncpg.Connection, name: str) -> int:
    return int(
        await database.fetchval("SELECT count(*) FROM rag.documents WHERE collection = $1", name)
    )


async def wait_until_applied(gateway: httpx.AsyncClient, name: str, tokens: list[str]) -> None:
    """A search with ``min_version`` of each partition's last token answers 200."""
    last: dict[int, int] = {}
    for token in tokens:
        partition, offset = map(int, token.split(":"))
        last[partition] = max(offset, last.get(partition, -1))
    deadline = time.monotonic() + 150
    for partition, offset in last.items():
        while True:
            response = await gateway.post(
                f"/v1/rag/collections/{name}/search",
                json={"query": "record", "mode": "vector", "min_version": f"{partition}:{offset}"},
            )
            if response.status_code == 200:
                break
            # 504: the replica did not get there within its bounded wait; ask again.
            assert response.status_code == 504, response.text
            assert time.monotonic() < deadline, "the restarted worker never caught up"


@pytest.mark.timeout(360)
async def test_acknowledged_documents_survive_a_sigkill_exactly_once(
    rag_workers: Any, rag_gateway: httpx.AsyncClient, rag_database: asyncpg.Connection
) -> None:
    worker = rag_workers.replica("only")
    await asyncio.to_thread(worker.start)
    name = f"e2e-kill-{uuid.uuid4().hex[:10]}"
    created = await rag_gateway.post("/v1/rag/collections", json={"name": name})
    assert created.status_code == 201, created.text
    batches = [batch_of(number) for number in range(BATCHES)]
    acknowledged: dict[str, str] = {}  # document id -> version token of its 202
    try:
        # First half: all acknowledged before the kill; the writer is still embedding.
        for batch in batches[: BATCHES // 2]:
            version = await ingest(rag_gateway, name, batch)
            acknowledged.update((document["id"], version) for document in batch)
        deadline = time.monotonic() + 60
        while (stored_at_kill := await documents_stored(rag_database, name)) < KILL_AFTER_DOCUMENTS:
            assert time.monotonic() < deadline, "the writer stored nothing"
            await asyncio.sleep(0.02)
        worker.kill()
        assert stored_at_kill < DOCUMENTS // 2, "the writer had finished: the kill was not mid-way"

        # Second half: sent while the replacement starts (the gateway waits for it).
        restarted = asyncio.create_task(asyncio.to_thread(worker.start))
        for batch in batches[BATCHES // 2 :]:
            version = await ingest(rag_gateway, name, batch)
            acknowledged.update((document["id"], version) for document in batch)
        await restarted
        assert len(acknowledged) == DOCUMENTS
        await wait_until_applied(rag_gateway, name, list(acknowledged.values()))

        # PostgreSQL: every acknowledged document, at the version of its 202.
        rows = await rag_database.fetch(
            "SELECT id, version FROM rag.documents WHERE collection = $1", name
        )
        assert {row["id"]: row["version"] for row in rows} == acknowledged
        # Written once: no (document, ordinal) twice (a UNIQUE constraint also says so),
        # and exactly one chunk per short document, so nothing was written beside them.
        duplicates = await rag_database.fetch(
            "SELECT document_id, ordinal, count(*) FROM rag.chunks WHERE collection = $1 "
            "GROUP BY document_id, ordinal HAVING count(*) > 1",
            name,
        )
        assert duplicates == []
        chunks = await rag_database.fetchval(
            "SELECT count(*) FROM rag.chunks WHERE collection = $1", name
        )
        assert chunks == DOCUMENTS

        # The collection's statistics and the restarted replica's index agree with them.
        info = (await rag_gateway.get(f"/v1/rag/collections/{name}")).json()
        assert (info["documents"], info["chunks"]) == (DOCUMENTS, chunks)
        # (Polled: another query group's worker may have answered the search above.)
        deadline = time.monotonic() + 60
        while (size := await worker.metric("x0_rag_index_size", collection=name)) != chunks:
            assert time.monotonic() < deadline, (size, chunks)
            await asyncio.sleep(0.2)

        # Searchable through the index: each batch's filter finds exactly its documents.
        for number, batch in enumerate(batches):
            response = await rag_gateway.post(
                f"/v1/rag/collections/{name}/search",
                json={
                    "query": "record",
                    "mode": "vector",
                    "k": BATCH_SIZE,
                    "filter": {"batch": number},
                },
            )
            assert response.status_code == 200, response.text
            found = sorted(hit["document_id"] for hit in response.json()["hits"])
            assert found == [document["id"] for document in batch], number
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await rag_gateway.delete(f"/v1/rag/collections/{name}")
