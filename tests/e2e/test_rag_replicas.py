"""Two RAG worker replicas: each holds the full index, both answer searches, one may die.

The replicas share the query group (a search goes to whichever holds its partition)
and the writer group; each follows the whole index topic itself. A search with
``min_version`` must see that write whichever replica answers it, and when one
replica is SIGKILLed the other takes its partitions and searches still succeed.

Workers of other query groups (the session's ``rag_worker``, anyone else's on this
broker) also answer every request, and the gateway keeps the first reply. So what
these replicas did is read from their own counters, never inferred from replies:
each search lands in one partition of this test's group, and the replica holding it
counts the outcome (``ok``, or the error it replied, e.g. ``deadline_exceeded``
when the version was not applied in time).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

pytestmark = pytest.mark.e2e

SEARCH = "rag.search.v1"
INITIAL = 200
ROUNDS = 30
SEARCHES_PER_ROUND = 4


async def chunk_count(database: asyncpg.Connection, name: str) -> int:
    return int(
        await database.fetchval("SELECT count(*) FROM rag.chunks WHERE collection = $1", name)
    )


async def served(worker: Any, outcome: str | None = None) -> float:
    """Searches the replica handled (with ``outcome``, or any)."""
    labels = {"type": SEARCH} if outcome is None else {"type": SEARCH, "outcome": outcome}
    return float(await worker.metric("x0_responder_handled_total", **labels))


async def wait_for_served(
    workers: list[Any], before: list[float], total: int, outcome: str | None = None
) -> list[float]:
    """Wait until the replicas handled ``total`` more searches between them (a reply from
    another group's worker may have reached the gateway first); each one's increase."""
    deadline = time.monotonic() + 60
    while True:
        increases = [await served(w, outcome) - b for w, b in zip(workers, before, strict=True)]
        if sum(increases) >= total:
            return increases
        assert time.monotonic() < deadline, (increases, total)
        await asyncio.sleep(0.2)


async def wait_for_full_index(
    workers: list[Any], database: asyncpg.Connection, name: str, documents: int
) -> None:
    """The writer stored ``documents`` (one chunk each) and every replica's
    ``x0_rag_index_size`` equals the collection's chunk count in PostgreSQL."""
    deadline = time.monotonic() + 60
    while True:
        chunks = await chunk_count(database, name)
        sizes = [await w.metric("x0_rag_index_size", collection=name) for w in workers]
        if chunks == documents and all(size == chunks for size in sizes):
            return
        assert time.monotonic() < deadline, (sizes, chunks, documents)
        await asyncio.sleep(0.2)


async def find(
    gateway: httpx.AsyncClient, name: str, number: int, query: str, version: str | None = None
) -> httpx.Response:
    """A vector search that only document ``fresh-<number>`` can match."""
    return await gateway.post(
        f"/v1/rag/collections/{name}/search",
        json={
            "query": query,
            "mode": "vector",
            "k": 3,
            "filter": {"n": number},
            "min_version": version,
        },
    )


def found(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["document_id"] for hit in response.json()["hits"]]


async def write_then_read(
    gateway: httpx.AsyncClient, name: str, number: int, *, failing_over: bool = False
) -> None:
    """Upsert one document (202, no wait), then search for it with its version at once,
    several times in parallel: whichever replica answers must already see it.

    ``failing_over``: a replica just died, so the write may sit in its writer partition
    until the group gives that to the survivor (the session timeout, 10 s), longer than a
    replica waits for a version (5 s); a 504 then is asked again, as a client would.
    """
    document = {
        "id": f"fresh-{number}",
        "text": f"Fresh note {number} about a lighthouse keeper and the evening tide.",
        "metadata": {"n": number},
    }
    accepted = await gateway.post(
        f"/v1/rag/collections/{name}/documents", json={"documents": [document]}
    )
    assert accepted.status_code == 202, accepted.text
    version = accepted.json()["version"]

    async def search(attempt: int) -> None:
        # Different text per search: a cached result would not touch the replica.
        query = f"lighthouse keeper {attempt}"
        response = await find(gateway, name, number, query, version)
        while failing_over and response.status_code == 504:
            response = await find(gateway, name, number, query, version)
        assert found(response) == [document["id"]]

    await asyncio.gather(*(search(attempt) for attempt in range(SEARCHES_PER_ROUND)))


@pytest.mark.timeout(300)
async def test_both_replicas_hold_the_index_and_serve_and_one_survives(
    rag_workers: Any, rag_gateway: httpx.AsyncClient, rag_database: asyncpg.Connection
) -> None:
    first, second = rag_workers.replica("a"), rag_workers.replica("b")
    await asyncio.gather(asyncio.to_thread(first.start), asyncio.to_thread(second.start))
    name = f"e2e-replicas-{uuid.uuid4().hex[:10]}"
    created = await rag_gateway.post("/v1/rag/collections", json={"name": name})
    assert created.status_code == 201, created.text
    try:
        for start in range(0, INITIAL, 100):
            documents = [
                {"id": f"doc-{i}", "text": f"Paragraph {i} on harbours and ships.", "metadata": {}}
                for i in range(start, start + 100)
            ]
            accepted = await rag_gateway.post(
                f"/v1/rag/collections/{name}/documents", json={"documents": documents}
            )
            assert accepted.status_code == 202, accepted.text
        # Each replica built its own full index from the index topic.
        await wait_for_full_index([first, second], rag_database, name, INITIAL)

        replicas = [first, second]
        ok_before = [await served(w, "ok") for w in replicas]
        late_before = [await served(w, "deadline_exceeded") for w in replicas]
        for number in range(ROUNDS):
            await write_then_read(rag_gateway, name, number)
        # Every one of these min_version searches was answered ok by one of the two
        # replicas, and both answered some (which one is the partitioner's random choice:
        # the chance that one got none of 120 is 2 * 2**-120).
        increases = await wait_for_served(replicas, ok_before, ROUNDS * SEARCHES_PER_ROUND, "ok")
        assert all(increase > 0 for increase in increases), increases
        assert [await served(w, "deadline_exceeded") for w in replicas] == late_before
        await wait_for_full_index(replicas, rag_database, name, INITIAL + ROUNDS)

        # One replica dies. Searches already in its partitions, or sent before the group
        # notices (the session timeout, 10 s), are answered by the survivor: none is lost.
        second.kill()
        ok_before = [await served(first, "ok")]
        responses = await asyncio.gather(
            *(find(rag_gateway, name, n, f"keeper after the crash {n}") for n in range(ROUNDS))
        )
        assert [found(r) for r in responses] == [[f"fresh-{n}"] for n in range(ROUNDS)]
        await wait_for_served([first], ok_before, ROUNDS, "ok")
        # The survivor also took over the writer partitions: new writes are searchable.
        before = [await served(first)]
        for number in range(ROUNDS, ROUNDS + 5):
            await write_then_read(rag_gateway, name, number, failing_over=True)
        await wait_for_served([first], before, 5 * SEARCHES_PER_ROUND)
        await wait_for_full_index([first], rag_database, name, INITIAL + ROUNDS + 5)
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await rag_gateway.delete(f"/v1/rag/collections/{name}")
