"""Tenancy in the rag worker's storage and writer: a collection belongs to one tenant.

The same collection name in two tenants is two collections (rows, index events, index
keys); another tenant's collection is ``not_found``; each tenant has its own
collections and documents quotas; rows written before tenants existed belong to
``default``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

import x0_rag
from x0_common.events.rag import CreateCollectionRequest, Document, IndexParams, UpsertDocuments
from x0_common.postgres import migrate
from x0_common.principal import DEFAULT_TENANT
from x0_common.testing.migrations import scratch_pool
from x0_common.testing.stack import StackEndpoints
from x0_rag.adapters.embedder import DynamicBatcher
from x0_rag.adapters.index_events import IndexEvents
from x0_rag.adapters.store import Quotas, RagStore
from x0_rag.errors import NotFound, QuotaExceeded
from x0_rag.handlers.writer import IngestWriter

from .support import EventLog, Topics, WriterUnderTest, at

pytestmark = pytest.mark.integration

MIGRATIONS = Path(x0_rag.__file__).parent / "migrations"
TEXT = "Each tenant's collections are its own, even when two tenants pick the same name."


@pytest.fixture
async def tenants(pg_pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str]]:
    """Two tenants of this test alone; their collections are removed afterwards."""
    run = uuid.uuid4().hex[:10]
    pair = (f"ta-{run}", f"tb-{run}")
    yield pair
    await pg_pool.execute("DELETE FROM rag.collections WHERE tenant = ANY($1::text[])", list(pair))


def _request(name: str, m: int = 16) -> CreateCollectionRequest:
    return CreateCollectionRequest(name=name, index=IndexParams(m=m), chunk_size=128)


async def test_the_same_name_in_two_tenants_is_two_collections(
    pg_pool: asyncpg.Pool, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    store = RagStore(pg_pool)
    in_a, _ = await store.of(a).create_collection(_request("docs", m=8))
    # Other parameters under the same name: no conflict, it is another collection.
    in_b, created = await store.of(b).create_collection(_request("docs", m=32))
    assert created
    assert (in_a.index.m, in_b.index.m) == (8, 32)
    assert (await store.of(b).collection("docs")).index.m == 32
    assert [c.name for c in await store.of(a).collections()] == ["docs"]
    assert await store.of(b).delete_collection("docs")
    assert (await store.of(a).collection("docs")).index.m == 8
    with pytest.raises(NotFound) as caught:
        await store.of(b).collection("docs")
    assert caught.value.http_status == 404


async def test_the_writer_writes_to_the_senders_tenant_only(
    writer: WriterUnderTest, index_log: EventLog, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    await writer.store.of(a).create_collection(_request("docs"))
    upsert = UpsertDocuments(collection="docs", documents=[Document(id="d1", text=TEXT)])
    await writer.writer.upsert(upsert, at(0, 1, tenant=a))
    # The same message from tenant b: b has no such collection, so it is refused.
    with pytest.raises(NotFound):
        await writer.writer.upsert(upsert, at(0, 2, tenant=b))
    await index_log.until(lambda records: len(records) >= 2)
    events = index_log.events()
    assert [(e.tenant, e.collection, e.error is None) for e in events] == [
        (a, "docs", True),
        (b, "docs", False),
    ]
    assert events[1].error is not None
    assert events[1].error.startswith("not_found")
    document = await writer.store.of(a).document("docs", "d1")
    assert document.text == TEXT
    with pytest.raises(NotFound):
        await writer.store.of(b).document("docs", "d1")


async def test_each_tenant_has_its_collection_quota(
    pg_pool: asyncpg.Pool, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    store = RagStore(pg_pool, quotas=Quotas(max_collections=2))
    for name in ("one", "two"):
        await store.of(a).create_collection(_request(name))
    with pytest.raises(QuotaExceeded) as caught:
        await store.of(a).create_collection(_request("three"))
    error = caught.value
    assert (error.code, error.http_status) == ("quota_exceeded", 403)
    assert error.details == {"reason": "quota_exceeded", "quota": "collections", "limit": 2}
    # An existing name answers as before; another tenant counts on its own.
    again, created = await store.of(a).create_collection(_request("one"))
    assert (again.name, created) == ("one", False)
    await store.of(b).create_collection(_request("three"))


async def test_each_tenant_has_its_documents_quota(  # noqa: PLR0917 - fixtures
    writer: WriterUnderTest,
    batcher: DynamicBatcher,
    broker: KafkaBroker,
    topics: Topics,
    index_log: EventLog,
    tenants: tuple[str, str],
) -> None:
    a, b = tenants
    limited = IngestWriter(
        RagStore(writer.store.pool, quotas=Quotas(max_documents=3)),
        batcher.embed,
        IndexEvents(broker, topics.index),
        writer.metrics,
        topic=topics.ingest,
    )
    for tenant in (a, b):
        await writer.store.of(tenant).create_collection(_request("docs"))

    def docs(*ids: str) -> UpsertDocuments:
        return UpsertDocuments(
            collection="docs", documents=[Document(id=i, text=TEXT) for i in ids]
        )

    await limited.upsert(docs("d1", "d2"), at(1, 1, tenant=a))
    with pytest.raises(QuotaExceeded) as caught:
        await limited.upsert(docs("d3", "d4"), at(1, 2, tenant=a))
    assert caught.value.details == {"reason": "quota_exceeded", "quota": "documents", "limit": 3}
    # Replacing a document adds none; one more fits; tenant b's quota is its own.
    await limited.upsert(docs("d1", "d3"), at(1, 3, tenant=a))
    await limited.upsert(docs("d1", "d2", "d3"), at(1, 4, tenant=b))
    await index_log.until(lambda records: len(records) >= 4)
    events = index_log.events()
    assert [e.error.split(":")[0] if e.error else None for e in events] == [
        None,
        "quota_exceeded",
        None,
        None,
    ]
    assert (await writer.store.of(a).collection("docs")).documents == 3


async def test_rows_written_before_tenants_belong_to_default(stack: StackEndpoints) -> None:
    async with scratch_pool(stack.postgres_dsn, "rag", MIGRATIONS, "002_ingest_log.sql") as pool:
        await pool.execute(
            "INSERT INTO rag.collections (name, m, ef_construction, ef, chunk_size,"
            " chunk_overlap) VALUES ('old', 16, 200, 64, 512, 50)"
        )
        await pool.execute(
            "INSERT INTO rag.documents (collection, id, text, version)"
            " VALUES ('old', 'd', 'before tenants', '0:0')"
        )
        await pool.execute(
            "INSERT INTO rag.chunks (collection, document_id, ordinal, start_offset,"
            " end_offset, text, embedding) VALUES ('old', 'd', 0, 0, 14, 'before tenants',"
            " $1)",
            bytes(1536),
        )
        # Later migrations follow it (their own tests cover them).
        assert (await migrate(pool, "rag", MIGRATIONS))[0] == "003_tenants.sql"
        for table in ("collections", "documents", "chunks"):
            tenants = await pool.fetch(f"SELECT DISTINCT tenant FROM rag.{table}")  # noqa: S608
            assert [row["tenant"] for row in tenants] == [DEFAULT_TENANT], table
        store = RagStore(pool)
        info = await store.collection("old")
        assert (info.documents, info.chunks) == (1, 1)
        assert (await store.document("old", "d")).text == "before tenants"
        with pytest.raises(NotFound):
            await store.of("elsewhere").collection("old")
