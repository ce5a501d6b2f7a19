"""Search and version waits on ``x0.rag.requests`` (the query replicas' shared group).

The searcher (:class:`~x0_rag.domain.search.Searcher`) runs over ports bound to the
caller's tenant (``context.tenant``): its view of the indexes, its rows in PostgreSQL,
its Redis caches, and the shared batcher. Another tenant's collection of the same name
is "no such collection" (404).

    SEARCH        malformed filter 400 (too many keys/values 413); unknown collection
                  404; ``min_version`` not applied here within
                  ``X0_RAG_MAX_VERSION_WAIT_MS`` (or the deadline) 504
                  ``deadline_exceeded``; PostgreSQL down 503 (retried)
    VERSION_WAIT  answers once applied; waits ``timeout_ms`` capped by
                  ``X0_RAG_MAX_VERSION_WAIT_MS`` and the deadline, then 504; a
                  partition the index log does not have 400

Waits are capped by the worker's setting because a responder handles one message of
a partition at a time: a long wait would hold up the requests queued behind it.
"""

from __future__ import annotations

from x0_common.contract import Rag
from x0_common.events.rag import (
    SearchRequest,
    SearchResult,
    VersionWaitRequest,
    VersionWaitResult,
)
from x0_common.kafka import RequestContext, Responder
from x0_rag.adapters.cache import SearchCache
from x0_rag.adapters.retrieval import PostgresRetrieval
from x0_rag.deps import RagDeps
from x0_rag.domain.search import Searcher


class SearchOperations:
    """Builds a :class:`Searcher` per request, over the caller's tenant's ports (the
    resources behind them open at start-up)."""

    def __init__(self, deps: RagDeps) -> None:
        self._deps = deps

    def searcher(self, tenant: str) -> Searcher:
        """The searcher over ``tenant``'s view of the started worker's ports."""
        deps, settings = self._deps, self._deps.settings
        cache = SearchCache(
            deps.stores.redis, deps.metrics, ttl_seconds=settings.cache_ttl_seconds, tenant=tenant
        )
        return Searcher(
            indexes=deps.indexes.of(tenant),
            retrieval=PostgresRetrieval(deps.stores.pool, tenant=tenant),
            batcher=deps.batcher,
            cache=cache,
            metrics=deps.metrics,
            max_version_wait_seconds=settings.max_version_wait_ms / 1000,
        )

    async def search(self, request: SearchRequest, context: RequestContext) -> SearchResult:
        """One search (:mod:`x0_rag.domain.search`)."""
        searcher = self.searcher(context.tenant)
        return await searcher.search(request, remaining=context.remaining())

    async def wait(self, request: VersionWaitRequest, context: RequestContext) -> VersionWaitResult:
        """Answer once ``request.version`` is applied on this replica."""
        searcher = self.searcher(context.tenant)
        bound = searcher.wait_bound(request.timeout_ms / 1000, context.remaining())
        await searcher.indexes.wait_for(request.version, bound)
        return VersionWaitResult(version=request.version)


def register(responder: Responder, deps: RagDeps) -> SearchOperations:
    """Register SEARCH and VERSION_WAIT; returns the operations (tests call them)."""
    operations = SearchOperations(deps)

    @responder.operation(Rag.SEARCH)
    async def on_search(request: SearchRequest, context: RequestContext) -> SearchResult:
        return await operations.search(request, context)

    @responder.operation(Rag.VERSION_WAIT)
    async def on_version_wait(
        request: VersionWaitRequest, context: RequestContext
    ) -> VersionWaitResult:
        return await operations.wait(request, context)

    return operations
