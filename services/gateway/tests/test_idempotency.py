"""``Idempotency-Key`` against the real Redis, on routes built by ``add_route``.

The endpoints are stand-ins that count their calls (what a worker would do is not
the subject here): the first answer is kept and replayed, a reused key with another
body is 422, a key still in progress is 409, and a 5xx is not kept.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response

from x0_common.contract import OPERATIONS, Crypto, Rag
from x0_common.errors import Conflict, Unavailable
from x0_common.events import rag as r
from x0_common.metrics import new_registry
from x0_common.settings import CommonSettings, KafkaSettings, RedisSettings
from x0_common.testing.stack import StackEndpoints
from x0_gateway.limits import idempotency
from x0_gateway.limits.install import close_limits, install_limits, open_limits
from x0_gateway.problems import PROBLEM_JSON, install_problem_handlers
from x0_gateway.routing import add_route
from x0_gateway.settings import GatewaySettings

from .limits_support import authenticate_by_test_headers, caller

PATH = "/v1/rag/collections"


class Stand:
    """The collection-create endpoint's stand-in: counts calls, fails when told; and the
    client that calls the app it stands in."""

    client: httpx.AsyncClient

    def __init__(self) -> None:
        self.calls = 0
        self.fail_with: Exception | None = None
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()

    async def create_collection(self, body: r.CreateCollectionRequest) -> Response:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        answer = {"name": body.name, "call": self.calls, "id": uuid.uuid4().hex}
        return Response(json.dumps(answer), status_code=201, media_type="application/json")


@pytest.fixture
async def stand(stack: StackEndpoints) -> AsyncIterator[Stand]:
    async for built in gateway(stack.redis_url):
        yield built


async def gateway(redis_url: str) -> AsyncIterator[Stand]:
    """An app with the collection-create row's route, its endpoint a stand-in."""
    settings = GatewaySettings(
        common=CommonSettings(
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
            redis=RedisSettings(url=redis_url),
        ),
        replica_id="unit",
    )
    app = FastAPI()
    app.state.settings = settings
    app.state.registry = new_registry()
    install_problem_handlers(app)
    install_limits(app, settings, app.state.registry)
    open_limits(app, settings)
    stand = Stand()
    router = APIRouter()

    async def create_collection(body: r.CreateCollectionRequest) -> Response:
        return await stand.create_collection(body)

    add_route(router, Rag.COLLECTION_CREATE, create_collection)
    app.include_router(router)
    authenticate_by_test_headers(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        stand.client = client
        yield stand
    await close_limits(app)


def headers(key: str, tenant: str = "", credential: str = "key-1") -> dict[str, str]:
    return {**caller(tenant or f"t{uuid.uuid4().hex[:10]}", credential), "Idempotency-Key": key}


@pytest.mark.integration
async def test_the_same_key_and_body_replay_the_first_answer(stand: Stand) -> None:
    client = stand.client
    who = headers(uuid.uuid4().hex)
    first = await client.post(PATH, json={"name": "docs"}, headers=who)
    again = await client.post(PATH, json={"name": "docs"}, headers=who)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert stand.calls == 1


@pytest.mark.integration
async def test_without_a_key_every_call_runs(stand: Stand) -> None:
    client = stand.client
    for _ in range(2):
        response = await client.post(PATH, json={"name": "docs"}, headers=caller("t1"))
        assert response.status_code == 201, response.text
    assert stand.calls == 2


@pytest.mark.integration
@pytest.mark.security
async def test_the_same_key_with_another_body_is_422(stand: Stand) -> None:
    client = stand.client
    who = headers(uuid.uuid4().hex)
    await client.post(PATH, json={"name": "docs"}, headers=who)
    other = await client.post(PATH, json={"name": "other"}, headers=who)
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM_JSON
    assert other.json()["details"]["reason"] == "idempotency_key_reused"
    assert stand.calls == 1


@pytest.mark.integration
@pytest.mark.security
async def test_keys_are_per_tenant_and_per_credential(stand: Stand) -> None:
    client = stand.client
    key, tenant = uuid.uuid4().hex, f"t{uuid.uuid4().hex[:10]}"
    await client.post(PATH, json={"name": "docs"}, headers=headers(key, tenant, "a"))
    # Another credential, or another tenant, with the same key: its own request.
    second = await client.post(PATH, json={"name": "docs"}, headers=headers(key, tenant, "b"))
    third = await client.post(PATH, json={"name": "docs"}, headers=headers(key, "", "a"))
    assert "idempotent-replayed" not in second.headers
    assert "idempotent-replayed" not in third.headers
    assert stand.calls == 3


@pytest.mark.integration
async def test_a_duplicate_while_the_first_runs_is_409_with_retry_after(stand: Stand) -> None:
    client = stand.client
    who = headers(uuid.uuid4().hex)
    stand.release.clear()
    first = asyncio.create_task(client.post(PATH, json={"name": "docs"}, headers=who))
    async with asyncio.timeout(10):
        await stand.entered.wait()
    duplicate = await client.post(PATH, json={"name": "docs"}, headers=who)
    stand.release.set()
    assert (await first).status_code == 201
    assert duplicate.status_code == 409
    assert duplicate.json()["details"]["reason"] == "idempotency_key_in_progress"
    assert duplicate.headers["retry-after"] == "1"
    assert stand.calls == 1


@pytest.mark.integration
async def test_a_4xx_is_kept_but_a_5xx_is_not(stand: Stand) -> None:
    client = stand.client
    refused = headers(uuid.uuid4().hex)
    stand.fail_with = Conflict("collection exists", details={"name": "docs"})
    first = await client.post(PATH, json={"name": "docs"}, headers=refused)
    stand.fail_with = None
    again = await client.post(PATH, json={"name": "docs"}, headers=refused)
    assert first.status_code == again.status_code == 409
    assert again.json() == first.json()
    assert stand.calls == 1

    failed = headers(uuid.uuid4().hex)
    stand.fail_with = Unavailable("worker away")
    assert (await client.post(PATH, json={"name": "docs"}, headers=failed)).status_code == 503
    stand.fail_with = None
    retried = await client.post(PATH, json={"name": "docs"}, headers=failed)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert stand.calls == 3


@pytest.mark.integration
async def test_a_malformed_key_is_422(stand: Stand) -> None:
    client = stand.client
    response = await client.post(PATH, json={"name": "docs"}, headers=headers("has space"))
    assert response.status_code == 422
    assert stand.calls == 0


@pytest.mark.unit
@pytest.mark.security
async def test_without_redis_a_keyed_request_is_503_not_run_unguarded() -> None:
    async for stand in gateway("redis://127.0.0.1:1/0"):
        client = stand.client
        keyed = await client.post(PATH, json={"name": "docs"}, headers=headers("k1"))
        unkeyed = await client.post(PATH, json={"name": "docs"}, headers=caller("t1"))
        assert keyed.status_code == 503
        assert keyed.headers["retry-after"] == "1"
        assert unkeyed.status_code == 201
        assert stand.calls == 1


@pytest.mark.unit
def test_the_rule_picks_the_rows_that_create_or_mutate() -> None:
    chosen = {operation.name for operation in OPERATIONS if idempotency.supports(operation)}
    assert chosen == {
        "create_key",
        "rotate_key",
        "configure_key",
        "restore_key",
        "create_collection",
        "upsert_documents",
        "publish_events",
    }


@pytest.mark.unit
@pytest.mark.security
def test_results_that_carry_secrets_are_never_replayable() -> None:
    assert idempotency.carries_secrets(Crypto.KEM_KEYPAIR.result)
    assert idempotency.carries_secrets(Crypto.KEY_EXPORT.result)
    assert idempotency.carries_secrets(Crypto.ENCAPSULATE_BATCH.result)
    assert idempotency.carries_secrets(Crypto.SESSION_INITIATE.result)
    assert not idempotency.carries_secrets(Crypto.KEY_CREATE.result)
