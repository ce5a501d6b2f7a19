"""Which limits a route gets: its rate class, derived from the contract row's scope.

    scope                         class       why together
    crypto, keys:*                crypto      CPU-bound work in the crypto worker
    rag:write                     ingest      embedding and indexing, the RAG writer
    rag:read                      search      an embedding and a k-NN query per call
    telemetry:read/write          telemetry   mesh nodes: many small calls
    admin (and anything new)      admin       operators; rare

Each class has a quota per credential (API key or token subject) and one per tenant,
both over the same window. A class, not a route, is limited: a caller cannot
multiply its quota by spreading calls over the routes of a class.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from x0_common.contract import Operation

RateClass = Literal["crypto", "ingest", "search", "telemetry", "admin"]


def rate_class(operation: Operation) -> RateClass:
    """The rate class of a row, from its scope."""
    scope = operation.scope
    if scope == "crypto" or scope.startswith("keys:"):
        return "crypto"
    if scope == "rag:write":
        return "ingest"
    if scope == "rag:read":
        return "search"
    if scope.startswith("telemetry:"):
        return "telemetry"
    return "admin"


class RatePolicy(BaseModel):
    """Requests allowed per ``window_seconds``: per credential and per tenant.

    GCRA: the quota may be spent in a burst, then refills evenly over the window
    (one request every ``window_seconds / quota``).
    """

    per_credential: int = Field(gt=0, le=10_000_000)
    per_tenant: int = Field(gt=0, le=100_000_000)
    window_seconds: int = Field(default=60, gt=0, le=86_400)


class RateLimitSettings(BaseModel):
    """``X0_GATEWAY_RATE_LIMITS__<CLASS>__PER_CREDENTIAL`` and the like."""

    enabled: bool = True
    crypto: RatePolicy = RatePolicy(per_credential=6_000, per_tenant=30_000)
    ingest: RatePolicy = RatePolicy(per_credential=600, per_tenant=3_000)
    search: RatePolicy = RatePolicy(per_credential=3_000, per_tenant=15_000)
    telemetry: RatePolicy = RatePolicy(per_credential=12_000, per_tenant=60_000)
    admin: RatePolicy = RatePolicy(per_credential=300, per_tenant=1_000)
    # One Redis round trip is ~0.1 ms; past this the replica's own limiter decides.
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=5)
    # After Redis failed, the local limiter decides for this long before Redis is
    # tried again, so a dead Redis costs one timeout per interval, not per request.
    fallback_seconds: float = Field(default=5.0, gt=0, le=300)
    # Classes refused (503) rather than limited locally while Redis is unreachable.
    fail_closed: frozenset[RateClass] = frozenset()

    def policy(self, rate: RateClass) -> RatePolicy:
        """The policy of a class."""
        policy: RatePolicy = getattr(self, rate)
        return policy
