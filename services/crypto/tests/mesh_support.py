"""Helpers of the mesh tests: a worker's dependencies and request contexts."""

from __future__ import annotations

from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from x0_common.contract import Crypto
from x0_common.events.crypto import BeaconVerifyRequest, SignedBeacon
from x0_common.kafka import RequestContext
from x0_common.metrics import new_registry
from x0_common.principal import Principal
from x0_common.resources import Stores
from x0_common.testing.principals import principal, request_context
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import Registry
from x0_crypto.domain.ports import ManagedKeys
from x0_crypto.metrics import CryptoMetrics
from x0_crypto.settings import CryptoSettings

WINDOW_MS = 60_000


def make_deps(
    registry: Registry,
    *,
    metrics: CollectorRegistry | None = None,
    keystore: ManagedKeys | None = None,
    pool: asyncpg.Pool | None = None,
    redis: Redis | None = None,
) -> CryptoDeps:
    """Dependencies as the worker builds them, with a 60 s beacon window."""
    stores = Stores(schema="crypto")
    if pool is not None:
        stores.pool = pool
    if redis is not None:
        stores.redis = redis
    deps = CryptoDeps(
        settings=CryptoSettings(beacon_window_seconds=WINDOW_MS // 1000),
        algorithms=registry,
        metrics=CryptoMetrics(metrics or new_registry()),
        stores=stores,
    )
    if keystore is not None:
        # A stand-in for the keystore: the mesh handlers read it through ManagedKeys.
        deps.keystore = keystore  # type: ignore[assignment]
    return deps


def context(correlation_id: str | None = None, caller: Principal | None = None) -> RequestContext:
    """A request's context; a new correlation id unless one is given (a redelivery)."""
    return request_context(
        caller or principal(subject="tester"),
        message_type=Crypto.BEACON_VERIFY.message_type,
        correlation_id=correlation_id,
        seconds_left=None,
    )


def verify_request(signed: SignedBeacon, **changes: Any) -> BeaconVerifyRequest:
    """What a verifier sends for ``signed`` (proof included), through JSON as on the wire."""
    fields = {
        "beacon": signed.beacon,
        "signature": signed.signature,
        "public_key": signed.public_key,
        "key_change_proof": signed.key_change_proof,
    } | changes
    wire = BeaconVerifyRequest(**fields).model_dump_json()
    return BeaconVerifyRequest.model_validate_json(wire)
