"""Redis caches of query embeddings and search results.

Keys (every part that can be long or hold user text is hashed, so no query text
appears in Redis keys or monitoring)::

    x0:rag:<tenant>:emb:<model id>:<sha256(query)>                -> 384 float32, LE
    x0:rag:<tenant>:res:<collection>:<sha256(request, versions)>  -> SearchResult JSON

Both are per tenant: a tenant never reads another's results, and cannot time its own
queries to learn what another tenant searched (a shared embedding cache would answer
faster for a query someone else asked).

A result key hashes the collection's applied versions on the replica that computed
it (``IndexManager.version_key``) with the model id and the request (query, mode,
k, ef, canonical filter). Any event applied to the collection changes its versions,
so later searches look up new keys and stale entries are never read again; they
expire after ``ttl_seconds``. An embedding depends only on the model and the text.

The cache is an optimisation: a Redis failure counts as ``error`` in
``x0_rag_cache_total`` and the search goes on without it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import KW_ONLY, dataclass, replace
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
from redis.exceptions import RedisError

from x0_common.principal import DEFAULT_TENANT
from x0_rag.metrics import SERVICE, RagMetrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

PREFIX: Final = "x0:rag"
# The query encoder: its name and input truncation (a different one embeds differently).
MODEL_ID: Final = "all-MiniLM-L6-v2@256"
_DIMENSIONS: Final = 384


def _digest(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        # Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class SearchCache:
    """Embedding and result caches on one Redis client; ``ttl_seconds=0`` turns both off."""

    redis: Redis
    metrics: RagMetrics
    _: KW_ONLY
    ttl_seconds: int
    model_id: str = MODEL_ID
    prefix: str = PREFIX
    tenant: str = DEFAULT_TENANT

    def of(self, tenant: str) -> SearchCache:
        """The same caches, for ``tenant``."""
        return replace(self, tenant=tenant)

    @property
    def _namespace(self) -> str:
        return f"{self.prefix}:{self.tenant}"

    @property
    def enabled(self) -> bool:
        """False when the TTL is 0."""
        return self.ttl_seconds > 0

    def embedding_key(self, query: str) -> str:
        """Where a query's embedding is cached."""
        return f"{self._namespace}:emb:{self.model_id}:{_digest(query)}"

    def result_key(self, collection: str, versions: str, request: str) -> str:
        """Where a search result is cached; ``request`` is the request's canonical JSON."""
        return f"{self._namespace}:res:{collection}:{_digest(versions, self.model_id, request)}"

    async def embedding(self, query: str) -> npt.NDArray[np.float32] | None:
        """The cached embedding of ``query``, or None."""
        raw = await self._get("embedding", self.embedding_key(query))
        if raw is None or len(raw) != 4 * _DIMENSIONS:
            return None
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    async def store_embedding(self, query: str, vector: npt.NDArray[np.float32]) -> None:
        """Cache ``query``'s embedding."""
        await self._set(self.embedding_key(query), np.asarray(vector, dtype="<f4").tobytes())

    async def result(self, key: str) -> bytes | None:
        """A cached result's JSON, or None."""
        return await self._get("result", key)

    async def store_result(self, key: str, payload: bytes) -> None:
        """Cache a result's JSON."""
        await self._set(key, payload)

    async def _get(self, kind: str, key: str) -> bytes | None:
        if not self.enabled:
            return None
        try:
            raw = await self.redis.get(key)
        except (RedisError, OSError) as error:
            self.metrics.cache.labels(SERVICE, kind, "error").inc()
            logger.warning("cache read failed", extra={"error": type(error).__name__})
            return None
        self.metrics.cache.labels(SERVICE, kind, "miss" if raw is None else "hit").inc()
        return raw if isinstance(raw, bytes) or raw is None else str(raw).encode()

    async def _set(self, key: str, value: bytes) -> None:
        if not self.enabled:
            return
        try:
            await self.redis.set(key, value, ex=self.ttl_seconds)
        except (RedisError, OSError) as error:
            logger.warning("cache write failed", extra={"error": type(error).__name__})
