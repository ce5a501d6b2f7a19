"""Rate limits per credential and per tenant, against the real Redis.

Requests here carry an invalid body: FastAPI runs the route's dependencies (the
authentication stand-in, then the rate limit) before it refuses the body, so an
allowed request answers 422 and a limited one 429, with no broker involved.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.crc import key_slot

from x0_common.contract import OPERATIONS
from x0_common.settings import CommonSettings, KafkaSettings, RedisSettings
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.limits.gcra import Limit, LocalGcra
from x0_gateway.limits.install import close_limits, open_limits
from x0_gateway.limits.policy import RateLimitSettings, rate_class
from x0_gateway.limits.ratelimit import keys_for
from x0_gateway.problems import PROBLEM_JSON
from x0_gateway.settings import GatewaySettings

from .limits_support import authenticate_by_test_headers, caller

SIGN = "/v1/crypto/signatures/sign"
SEARCH = "/v1/rag/collections/docs/search"
TENANTS = "/v1/admin/tenants"
AUDIT = "/v1/audit?limit=0"  # below the minimum: 422 once allowed
# Nothing listens here: Redis is "down".
DEAD_REDIS = "redis://127.0.0.1:1/0"


def gateway(redis_url: str, **limits: object) -> FastAPI:
    """The gateway app (lifespan not run) with small quotas for the crypto class."""
    policy = {"crypto": {"per_credential": 3, "per_tenant": 5, "window_seconds": 60}}
    settings = GatewaySettings(
        common=CommonSettings(
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
            redis=RedisSettings(url=redis_url),
        ),
        replica_id="unit",
        rate_limits=RateLimitSettings.model_validate({**policy, **limits}),
    )
    app = authenticate_by_test_headers(create_app(settings))
    open_limits(app, settings)
    return app


@pytest.fixture
async def client(stack: StackEndpoints) -> AsyncIterator[httpx.AsyncClient]:
    app = gateway(stack.redis_url)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        yield client
    await close_limits(app)


def tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.mark.integration
async def test_limited_routes_say_their_quota_and_what_is_left(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(SIGN, json={}, headers=caller(tenant()))
    assert response.status_code == 422
    assert response.headers["ratelimit-policy"] == (
        '"crypto-credential";q=3;w=60, "crypto-tenant";q=5;w=60'
    )
    assert response.headers["ratelimit"].startswith('"crypto-credential";r=2;t=')
    assert '"crypto-tenant";r=4;t=' in response.headers["ratelimit"]


@pytest.mark.integration
@pytest.mark.security
async def test_a_credential_past_its_quota_gets_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    who = caller(tenant())
    statuses = [(await client.post(SIGN, json={}, headers=who)).status_code for _ in range(4)]
    assert statuses == [422, 422, 422, 429]
    refused = await client.post(SIGN, json={}, headers=who)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["details"]["limit"] == "credential"
    # One request refills every 60/3 = 20 s.
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert '"crypto-credential";r=0' in refused.headers["ratelimit"]


@pytest.mark.integration
@pytest.mark.security
async def test_concurrent_calls_of_one_caller_get_its_quota_and_no_more(
    client: httpx.AsyncClient,
) -> None:
    """Issue 11's finding: 200 concurrent calls of one caller all succeeded. Now the
    decision is atomic in Redis: of 50 at once, exactly the quota (3) pass."""
    who = caller(tenant())
    answers = await asyncio.gather(*(client.post(SIGN, json={}, headers=who) for _ in range(50)))
    statuses = sorted(response.status_code for response in answers)
    assert statuses == [422] * 3 + [429] * 47


@pytest.mark.integration
@pytest.mark.security
async def test_a_tenants_credentials_share_the_tenants_quota(client: httpx.AsyncClient) -> None:
    name = tenant()
    first = [await client.post(SIGN, json={}, headers=caller(name, "a")) for _ in range(3)]
    second = [await client.post(SIGN, json={}, headers=caller(name, "b")) for _ in range(3)]
    assert [r.status_code for r in first + second] == [422] * 5 + [429]
    assert second[-1].json()["details"]["limit"] == "tenant"
    # Another tenant, and another class of the same tenant, are not affected.
    assert (await client.post(SIGN, json={}, headers=caller(tenant(), "a"))).status_code == 422
    searched = await client.post(SEARCH, json={}, headers=caller(name, "a"))
    assert searched.status_code == 422
    assert '"search-credential";q=3000' in searched.headers["ratelimit-policy"]


@pytest.mark.integration
@pytest.mark.security
async def test_admin_routes_and_the_audit_log_share_the_admin_class_per_credential(
    stack: StackEndpoints,
) -> None:
    """The admin routes and GET /v1/audit are limited per credential too (429 with
    Retry-After and the RateLimit fields), as one class."""
    app = gateway(
        stack.redis_url, admin={"per_credential": 2, "per_tenant": 100, "window_seconds": 60}
    )
    # Never reached: every request here ends before its endpoint (422 or 429).
    app.state.key_store = app.state.audit_log = object()
    name, other = tenant(), tenant()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        # Invalid input: allowed requests answer 422 without touching the store.
        allowed = [
            await client.post(TENANTS, json={}, headers=caller(name, "operator")),
            await client.get(AUDIT, headers=caller(name, "operator")),
        ]
        refused = await client.post(TENANTS, json={}, headers=caller(name, "operator"))
        refused_read = await client.get(AUDIT, headers=caller(name, "operator"))
        another = await client.get(AUDIT, headers=caller(other, "operator"))
    await close_limits(app)
    assert [r.status_code for r in allowed] == [422, 422]
    assert allowed[0].headers["ratelimit-policy"] == (
        '"admin-credential";q=2;w=60, "admin-tenant";q=100;w=60'
    )
    assert allowed[1].headers["ratelimit"].startswith('"admin-credential";r=0;t=')
    for response in (refused, refused_read):
        assert response.status_code == 429
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert (problem["code"], problem["details"]["rate_class"]) == ("rate_limited", "admin")
        assert problem["details"]["limit"] == "credential"
        # One request refills every 60/2 = 30 s.
        assert 1 <= int(response.headers["retry-after"]) <= 30
        assert '"admin-credential";r=0' in response.headers["ratelimit"]
    assert another.status_code == 422


@pytest.mark.integration
async def test_replicas_share_one_count_in_redis(stack: StackEndpoints) -> None:
    """Two gateway apps (two replicas) draw on the same quota."""
    who = caller(tenant())
    apps = [gateway(stack.redis_url), gateway(stack.redis_url)]
    statuses = []
    for turn in range(4):
        app = apps[turn % 2]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client:
            statuses.append((await client.post(SIGN, json={}, headers=who)).status_code)
    assert statuses == [422, 422, 422, 429]
    for app in apps:
        await close_limits(app)


@pytest.mark.unit
@pytest.mark.security
async def test_without_redis_the_replica_limits_in_process() -> None:
    """Fail open, not unlimited: the local limiter applies the same quotas."""
    app = gateway(DEAD_REDIS)
    who = caller(tenant())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        statuses = [(await client.post(SIGN, json={}, headers=who)).status_code for _ in range(4)]
        answered = await client.post(SIGN, json={}, headers=caller(tenant()))
        metrics = app.state.registry.get_sample_value(
            "x0_rate_limit_decisions_total",
            {"service": "gateway", "rate_class": "crypto", "outcome": "limited", "source": "local"},
        )
    assert statuses == [422, 422, 422, 429]
    assert answered.headers["ratelimit"].startswith('"crypto-credential";r=2')
    assert metrics == 1
    await close_limits(app)


@pytest.mark.unit
@pytest.mark.security
async def test_a_fail_closed_class_answers_503_while_redis_is_down() -> None:
    app = gateway(DEAD_REDIS, fail_closed=["crypto"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        refused = await client.post(SIGN, json={}, headers=caller(tenant()))
        other_class = await client.post(SEARCH, json={}, headers=caller(tenant()))
    assert refused.status_code == 503
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert int(refused.headers["retry-after"]) >= 1
    assert other_class.status_code == 422
    await close_limits(app)


@pytest.mark.unit
def test_every_routed_row_has_the_class_its_scope_implies() -> None:
    expected = {
        "crypto": "crypto",
        "rag:write": "ingest",
        "rag:read": "search",
        "telemetry:read": "telemetry",
        "telemetry:write": "telemetry",
    }
    for operation in OPERATIONS:
        if operation.http is None:
            continue
        wanted = "crypto" if operation.scope.startswith("keys:") else expected[operation.scope]
        assert rate_class(operation) == wanted, operation.name


@pytest.mark.unit
def test_a_callers_two_keys_share_one_cluster_slot() -> None:
    """The script touches both keys: on a Redis Cluster they must sit in one slot."""
    credential, tenant_key = keys_for("crypto", "acme", "jwt:https://idp/{x}:sub")
    assert key_slot(credential.encode()) == key_slot(tenant_key.encode())
    assert key_slot(credential.encode()) == key_slot(b"{acme}")
    assert "https" not in credential  # the credential id is hashed


@pytest.mark.unit
def test_local_gcra_spends_a_burst_then_refills_evenly() -> None:
    gcra = LocalGcra()
    limits = (Limit(quota=3, window_seconds=60), Limit(quota=100, window_seconds=60))
    decisions = [gcra.decide(("c", "t"), limits) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.credential_remaining for d in decisions[:3]] == [2, 1, 0]
    assert 19_000 < decisions[3].retry_after_ms <= 20_000
    # A refused request costs nothing: the tenant's count did not move.
    assert decisions[3].tenant_remaining == 97
