"""Search on the real PostgreSQL, Redis, Kafka and model: modes, filters, waits, cache."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import redis.asyncio as aioredis
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from x0_common.contract import Rag
from x0_common.events.rag import (
    SearchRequest,
    VersionWaitRequest,
    VersionWaitResult,
)
from x0_common.kafka import RequestContext
from x0_common.metrics import new_registry
from x0_common.resources import Stores
from x0_common.testing import SpanCapture
from x0_common.testing.handlers import CapturingResponder
from x0_common.testing.principals import principal, request_context
from x0_rag.adapters.cache import SearchCache
from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.adapters.index import IndexManager, VersionNotApplied
from x0_rag.adapters.retrieval import PostgresRetrieval
from x0_rag.deps import RagDeps
from x0_rag.domain.fusion import reciprocal_rank_fusion
from x0_rag.domain.search import HYBRID_DEPTH, HYBRID_RRF_K, Searcher, hybrid_weights
from x0_rag.errors import InvalidFilter, NotFound, TooLarge
from x0_rag.handlers import search as search_handlers
from x0_rag.metrics import SERVICE, RagMetrics
from x0_rag.settings import RagSettings

from .conftest import StartManager, unique
from .support import RagWriter

pytestmark = pytest.mark.integration

DOCUMENTS = {
    "kafka": (
        "Apache Kafka stores streams of records in partitioned, replicated logs.",
        {"team": "infra", "lang": "en"},
    ),
    "postgres": (
        "PostgreSQL ranks full-text matches with ts_rank_cd over tsvector columns.",
        {"team": "data", "lang": "en"},
    ),
    "cats": (
        "Young cats grow quickly and need a diet rich in meat.",
        {"team": "pets", "lang": "en"},
    ),
    "hnsw": (
        "Hierarchical navigable small world graphs answer approximate nearest neighbour queries.",
        {"team": "data", "lang": "en"},
    ),
    "katzen": ("Katzen brauchen Fleisch und frisches Wasser.", {"team": "pets", "lang": "de"}),
    "invoice": (
        "Invoice 4471: Kitten brand printer toner, billed to accounting.",
        {"team": "ops", "year": 2024},
    ),
}


@dataclass
class Corpus:
    name: str
    searcher: Searcher
    manager: IndexManager
    registry: CollectorRegistry
    last_version: str

    def cache_count(self, kind: str, result: str) -> float:
        value = self.registry.get_sample_value(
            "x0_rag_cache_total", {"service": SERVICE, "kind": kind, "result": result}
        )
        return value or 0.0


@pytest.fixture
async def batcher(embedder: Embedder) -> AsyncIterator[DynamicBatcher]:
    started = DynamicBatcher(embedder.embed, max_batch=16, linger_ms=1)
    yield started
    await started.close()


@pytest.fixture
async def corpus(
    writer: RagWriter,
    start_manager: StartManager,
    rag_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
    batcher: DynamicBatcher,
) -> Corpus:
    name = unique("s")
    await writer.create_collection(name)
    for document_id, (text, metadata) in DOCUMENTS.items():
        last = await writer.upsert(name, document_id, [text], metadata)
    registry = new_registry()
    metrics = RagMetrics(registry)
    manager = await start_manager(metrics=metrics)
    searcher = Searcher(
        indexes=manager,
        retrieval=PostgresRetrieval(rag_pool),
        batcher=batcher,
        cache=SearchCache(redis_client, metrics, ttl_seconds=60),
        metrics=metrics,
        max_version_wait_seconds=3.0,
    )
    return Corpus(name, searcher, manager, registry, last.source)


async def search(corpus: Corpus, query: str, **fields: object) -> list[str]:
    request = SearchRequest(collection=corpus.name, query=query, **fields)  # type: ignore[arg-type]
    result = await corpus.searcher.search(request, remaining=None)
    assert result.mode == request.mode
    return [hit.document_id for hit in result.hits]


async def test_vector_search_finds_by_meaning(corpus: Corpus) -> None:
    found = await search(
        corpus, "how do approximate nearest neighbour indexes work", mode="vector", k=2
    )
    assert found[0] == "hnsw"
    assert await search(corpus, "what should a kitten eat", mode="vector", k=1) == ["cats"]


async def test_keyword_search_finds_words_and_ranks_them(corpus: Corpus) -> None:
    assert await search(corpus, "ts_rank_cd", mode="keyword") == ["postgres"]
    assert await search(corpus, "kitten", mode="keyword") == ["invoice"]
    # OR semantics: any word ranks, one with more rare words first (BM25).
    found = await search(corpus, "kitten replicated logs", mode="keyword")
    assert found == ["kafka", "invoice"]
    # Stemming: "ranking" and "columns" match "ranks" and "column".
    assert await search(corpus, "ranking column", mode="keyword") == ["postgres"]
    # A quoted phrase must appear in order; + requires a word, - excludes one.
    assert await search(corpus, '"printer toner" kafka', mode="keyword") == ["invoice"]
    assert await search(corpus, '"toner printer"', mode="keyword") == []
    assert await search(corpus, "+kafka kitten", mode="keyword") == ["kafka"]
    assert await search(corpus, "kitten replicated -invoice", mode="keyword") == ["kafka"]
    # Only stop words, or no match: fewer hits than k, never an error.
    assert await search(corpus, "the and of", mode="keyword") == []
    assert await search(corpus, "zebra", mode="keyword", k=10) == []


async def test_hits_carry_the_stored_chunk_and_its_document_metadata(corpus: Corpus) -> None:
    request = SearchRequest(collection=corpus.name, query="kitten", mode="keyword")
    (hit,) = (await corpus.searcher.search(request, remaining=None)).hits
    text, metadata = DOCUMENTS["invoice"]
    assert (hit.document_id, hit.text, hit.start, hit.end) == ("invoice", text, 0, len(text))
    assert hit.metadata == metadata
    assert hit.score > 0


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
async def test_filters_apply_in_every_mode_and_fewer_matches_than_k_is_fine(
    corpus: Corpus, mode: str
) -> None:
    pets = await search(corpus, "cats need meat", mode=mode, k=5, filter={"team": "pets"})
    expected_pets = {"cats", "katzen"} if mode != "keyword" else {"cats"}
    assert set(pets) == expected_pets
    data = await search(
        corpus, "ranking graphs queries", mode=mode, k=10, filter={"team": {"in": ["data", "ops"]}}
    )
    assert set(data) <= {"postgres", "hnsw", "invoice"}
    # JSON semantics, the same in hnswlib's filter and in SQL: 2024 equals 2024.0,
    # never "2024"; a missing key never matches, not even null.
    word = "kitten" if mode == "keyword" else "printer toner invoice"
    assert await search(corpus, word, mode=mode, filter={"year": 2024.0}) == ["invoice"]
    assert await search(corpus, word, mode=mode, filter={"year": "2024"}) == []
    assert await search(corpus, word, mode=mode, filter={"lang": None}) == []
    assert await search(corpus, word, mode=mode, filter={"team": "nobody"}) == []


async def test_hybrid_fuses_the_vector_and_keyword_rankings(corpus: Corpus) -> None:
    query = "kitten"
    by_vector = await search(corpus, query, mode="vector", k=1)
    by_keyword = await search(corpus, query, mode="keyword", k=1)
    assert by_vector != by_keyword  # the two retrievers disagree on the best hit
    hybrid = await search(corpus, query, mode="hybrid", k=2)
    assert set(hybrid) == set(by_vector) | set(by_keyword)

    # Exactly weighted reciprocal rank fusion of both lists at the hybrid depth.
    depth = HYBRID_DEPTH
    vector_ids = [
        i
        for i, _ in await corpus.manager.search(
            corpus.name, await corpus.searcher.embed(query), depth
        )
    ]
    keyword_ids = [i for i, _ in await corpus.manager.keyword(corpus.name, query, depth)]
    fused = reciprocal_rank_fusion(
        [vector_ids, keyword_ids], k=HYBRID_RRF_K, weights=hybrid_weights(None), limit=3
    )
    request = SearchRequest(collection=corpus.name, query=query, mode="hybrid", k=3)
    result = await corpus.searcher.search(request, remaining=None)
    assert [hit.chunk_id for hit in result.hits] == [hit.id for hit in fused]
    assert [hit.score for hit in result.hits] == pytest.approx([hit.score for hit in fused])
    # keyword_weight 1 ranks by the keyword half alone, 0 by the vector half alone.
    assert (await search(corpus, query, mode="hybrid", k=1, keyword_weight=1.0)) == by_keyword
    assert (await search(corpus, query, mode="hybrid", k=1, keyword_weight=0.0)) == by_vector


async def test_bad_filters_and_unknown_collections_are_typed_errors(corpus: Corpus) -> None:
    with pytest.raises(InvalidFilter) as malformed:
        await search(corpus, "x", filter={"team": ["a", "b"]})
    assert (malformed.value.code, malformed.value.http_status) == ("invalid_input", 400)
    with pytest.raises(TooLarge):
        await search(corpus, "x", filter={f"k{i}": i for i in range(40)})
    with pytest.raises(NotFound) as missing:
        await corpus.searcher.search(
            SearchRequest(collection=unique("absent"), query="x"), remaining=None
        )
    assert missing.value.http_status == 404


async def test_an_empty_collection_answers_no_hits_in_every_mode(
    corpus: Corpus, writer: RagWriter
) -> None:
    empty = unique("e")
    await writer.create_collection(empty)
    for mode in ("vector", "keyword", "hybrid"):
        request = SearchRequest(collection=empty, query="anything at all", mode=mode)  # type: ignore[arg-type]
        assert (await corpus.searcher.search(request, remaining=None)).hits == []


@pytest.mark.parametrize("mode", ["vector", "keyword"])
async def test_min_version_waits_for_the_write_then_sees_it(
    corpus: Corpus, writer: RagWriter, mode: str
) -> None:
    event = await writer.upsert(
        corpus.name,
        "dogs",
        ["Dogs need long walks and a warm basket."],
        {"team": "pets"},
        publish=False,
    )
    request = SearchRequest(
        collection=corpus.name,
        query="dogs walks",
        mode=mode,  # type: ignore[arg-type]
        k=1,
        min_version=event.source,
    )
    waiting = asyncio.create_task(corpus.searcher.search(request, remaining=None))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await writer.publish(event)
    result = await asyncio.wait_for(waiting, 20)
    assert [hit.document_id for hit in result.hits] == ["dogs"]


async def test_min_version_not_reached_is_a_504_bounded_by_the_deadline(
    corpus: Corpus, writer: RagWriter
) -> None:
    event = await writer.upsert(corpus.name, "late", ["Never published."], publish=False)
    request = SearchRequest(collection=corpus.name, query="x", min_version=event.source)
    started = asyncio.get_running_loop().time()
    with pytest.raises(VersionNotApplied) as late:
        await corpus.searcher.search(request, remaining=0.4)
    waited = asyncio.get_running_loop().time() - started
    assert late.value.http_status == 504
    assert 0.3 <= waited < 1.5  # the caller's deadline, not the 3 s setting


async def test_results_are_cached_until_the_collection_changes(
    corpus: Corpus, writer: RagWriter
) -> None:
    query = f"what do young cats eat {corpus.name}"  # unique text: a cold embedding cache
    first = await search(corpus, query, mode="hybrid", k=3)
    assert corpus.cache_count("result", "miss") == 1
    assert corpus.cache_count("embedding", "miss") == 1
    assert await search(corpus, query, mode="hybrid", k=3) == first
    assert corpus.cache_count("result", "hit") == 1
    # Another k is another result, but the same query embedding.
    await search(corpus, query, mode="vector", k=2)
    assert corpus.cache_count("embedding", "hit") == 1
    # A write to the collection changes its version: the cached result is not used.
    event = await writer.upsert(corpus.name, "kitten-food", ["Young cats eat kitten food."])
    await corpus.manager.wait_for(event.source, timeout=20)
    after = await search(corpus, query, mode="hybrid", k=3)
    assert corpus.cache_count("result", "miss") == 3
    assert "kitten-food" in after


async def test_a_chunk_deleted_in_postgres_but_still_indexed_is_left_out(
    corpus: Corpus, rag_pool: asyncpg.Pool
) -> None:
    assert "katzen" in await search(corpus, "Katzen Fleisch", mode="vector", k=6)
    await rag_pool.execute(
        "DELETE FROM rag.documents WHERE collection = $1 AND id = 'katzen'", corpus.name
    )
    found = await search(corpus, "Katzen Fleisch Wasser", mode="vector", k=6)
    assert "katzen" not in found
    assert len(found) == 5


async def test_spans_name_the_steps_and_never_hold_the_query(
    corpus: Corpus, span_capture: SpanCapture
) -> None:
    span_capture.clear()
    secret = f"confidential query {unique('q')}"
    await search(corpus, secret, mode="hybrid", filter={"team": "pets"})
    spans = {span.name: span for span in span_capture.spans}
    assert {"rag.search", "rag.embed"} <= set(spans)
    assert spans["rag.search"].attributes["x0.rag.mode"] == "hybrid"
    for span in span_capture.spans:
        for value in (span.attributes or {}).values():
            assert "confidential" not in str(value)


def context(seconds_left: float) -> RequestContext:
    return request_context(seconds_left=seconds_left)


async def test_the_handlers_answer_searches_and_version_waits(
    corpus: Corpus,
    settings: RagSettings,
    rag_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
    writer: RagWriter,
) -> None:
    responder = CapturingResponder()
    deps = RagDeps(
        settings=settings,
        metrics=RagMetrics(new_registry()),
        stores=Stores.of(rag_pool, redis_client),
        broker=KafkaBroker(),  # never started: the search handlers publish nothing
    )
    search_handlers.register(responder, deps)  # type: ignore[arg-type]
    deps.batcher = corpus.searcher.batcher  # type: ignore[assignment]
    deps.indexes = corpus.manager
    _, on_search = responder.handlers[Rag.SEARCH.message_type]
    _, on_wait = responder.handlers[Rag.VERSION_WAIT.message_type]

    result = await on_search(
        SearchRequest(collection=corpus.name, query="kitten", mode="keyword"), context(5)
    )
    assert [hit.document_id for hit in result.hits] == ["invoice"]

    applied = await on_wait(VersionWaitRequest(version=corpus.last_version), context(5))
    assert applied == VersionWaitResult(version=corpus.last_version)

    pending = await writer.upsert(corpus.name, "never", ["Not published."], publish=False)
    started = time.monotonic()
    with pytest.raises(VersionNotApplied):
        # 60 s asked, 3 s allowed by this worker, 0.5 s left before the deadline.
        await on_wait(VersionWaitRequest(version=pending.source, timeout_ms=60_000), context(0.5))
    assert time.monotonic() - started < 1.5


async def test_a_search_sees_its_own_tenants_collections_only(
    corpus: Corpus,
    settings: RagSettings,
    rag_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> None:
    responder = CapturingResponder()
    deps = RagDeps(
        settings=settings,
        metrics=RagMetrics(new_registry()),
        stores=Stores.of(rag_pool, redis_client),
        broker=KafkaBroker(),
    )
    search_handlers.register(responder, deps)  # type: ignore[arg-type]
    deps.batcher = corpus.searcher.batcher  # type: ignore[assignment]
    deps.indexes = corpus.manager
    _, on_search = responder.handlers[Rag.SEARCH.message_type]
    for mode in ("keyword", "vector"):
        request = SearchRequest(collection=corpus.name, query="kitten", mode=mode)
        mine = await on_search(request, context(5))
        assert mine.hits
        # The corpus is the default tenant's: for another tenant it does not exist.
        with pytest.raises(NotFound):
            await on_search(request, request_context(principal(f"other-{uuid.uuid4().hex[:8]}")))
