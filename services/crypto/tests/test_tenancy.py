"""Tenancy in the crypto worker: managed keys, node pins and nonces belong to a tenant.

The same key name in two tenants is two keys; another tenant's key is ``not_found``
(404, never 403: its existence does not leak); a backup restores only in its tenant;
each tenant has its own key quota; a request straight on Kafka with another tenant's
principal, or with none, is refused by the worker itself; keys written before tenants
existed belong to ``default``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from x0_common.contract import Crypto
from x0_common.errors import Forbidden, NotFound, QuotaExceeded, Unauthenticated, X0Error
from x0_common.events.crypto import BeaconSignRequest, CreateKeyRequest, KeyNameRequest
from x0_common.kafka.broker import new_broker
from x0_common.postgres import migrate
from x0_common.principal import DEFAULT_TENANT
from x0_common.settings import KafkaSettings
from x0_common.testing.kafka import responder_under_test, running_requester
from x0_common.testing.migrations import scratch_pool
from x0_common.testing.principals import principal, principal_header
from x0_common.testing.stack import StackEndpoints
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.app import MIGRATIONS
from x0_crypto.domain import Registry, envelope
from x0_crypto.domain.managed import KeySettings
from x0_crypto.handlers import keys as key_handlers
from x0_crypto.handlers.mesh import MeshOperations

from .kek_support import legacy_seal
from .keys_support import KEK, KeysUnderTest
from .memory_keys import InMemoryManagedKeys
from .mesh_support import context, make_deps, verify_request

pytestmark = pytest.mark.integration

CREATE, READ, LIST = Crypto.KEY_CREATE, Crypto.KEY_READ, Crypto.KEY_LIST


@pytest.fixture
async def tenants(pg_pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str]]:
    """Two tenants of this test alone; their keys and pins are removed afterwards."""
    run = uuid.uuid4().hex[:10]
    pair = (f"ta-{run}", f"tb-{run}")
    yield pair
    for table in ("keys", "node_pins"):
        await pg_pool.execute(
            f"DELETE FROM crypto.{table} WHERE tenant = ANY($1::text[])",  # noqa: S608
            list(pair),
        )


async def refused(
    keys: KeysUnderTest, operation: Any, payload: dict[str, Any], tenant: str
) -> X0Error:
    with pytest.raises(X0Error) as caught:
        await keys.call(operation.message_type, payload, tenant=tenant)
    return caught.value


async def test_the_same_name_in_two_tenants_is_two_keys(
    keys: KeysUnderTest, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    in_a = await keys.call(CREATE.message_type, {"name": "shared", "type": "X-Wing"}, tenant=a)
    in_b = await keys.call(CREATE.message_type, {"name": "shared", "type": "ML-DSA-65"}, tenant=b)
    assert (in_a["type"], in_b["type"]) == ("X-Wing", "ML-DSA-65")
    assert (await keys.call(READ.message_type, {"name": "shared"}, tenant=a)) == in_a
    assert (await keys.call(READ.message_type, {"name": "shared"}, tenant=b)) == in_b
    assert (await keys.call(LIST.message_type, {}, tenant=a))["names"] == ["shared"]
    rotated = await keys.call(Crypto.KEY_ROTATE.message_type, {"name": "shared"}, tenant=b)
    assert rotated["latest_version"] == 2
    assert (await keys.call(READ.message_type, {"name": "shared"}, tenant=a))["latest_version"] == 1


async def test_another_tenants_key_is_not_found(
    keys: KeysUnderTest, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    await keys.call(
        CREATE.message_type,
        {"name": "secret", "type": "ML-KEM-768", "exportable": True, "deletion_allowed": True},
        tenant=a,
    )
    sealed = await keys.call(
        Crypto.KEY_ENCRYPT.message_type, {"name": "secret", "plaintext": "aGk"}, tenant=a
    )
    named = {"name": "secret"}
    attempts: list[tuple[Any, dict[str, Any]]] = [
        (READ, named),
        (Crypto.KEY_ROTATE, named),
        (Crypto.KEY_CONFIG, {**named, "min_decryption_version": 1}),
        (Crypto.KEY_EXPORT, named),
        (Crypto.KEY_BACKUP, named),
        (Crypto.KEY_ENCRYPT, {**named, "plaintext": "aGk"}),
        (Crypto.KEY_DECRYPT, {**named, "ciphertext": sealed["ciphertext"]}),
    ]
    for operation, payload in attempts:
        error = await refused(keys, operation, payload, b)
        assert isinstance(error, NotFound), operation.name
        assert (error.http_status, error.details["reason"]) == (404, "key_not_found")
    # Delete is idempotent: another tenant's key is "nothing to delete", and stays.
    gone = await keys.call(Crypto.KEY_DELETE.message_type, named, tenant=b)
    assert gone == {"name": "secret", "deleted": False}
    assert (await keys.call(LIST.message_type, {}, tenant=b))["names"] == []
    still = await keys.call(READ.message_type, named, tenant=a)
    assert still["latest_version"] == 1


async def test_a_request_id_names_a_key_of_its_own_tenant_only(
    keys: KeysUnderTest, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    payload = {"name": "k", "type": "X-Wing", "request_id": "same-id"}
    in_a = await keys.call(CREATE.message_type, payload, tenant=a)
    in_b = await keys.call(CREATE.message_type, payload, tenant=b)
    assert in_a["versions"][0]["public_key"] != in_b["versions"][0]["public_key"]
    # Within a tenant, the id still replays.
    assert await keys.call(CREATE.message_type, payload, tenant=a) == in_a


async def test_a_backup_restores_only_in_its_tenant(
    keys: KeysUnderTest, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    await keys.call(CREATE.message_type, {"name": "kept", "type": "ML-DSA-44"}, tenant=a)
    blob = await keys.call(Crypto.KEY_BACKUP.message_type, {"name": "kept"}, tenant=a)
    restore = {"backup": blob["backup"], "name": "copy"}
    error = await refused(keys, Crypto.KEY_RESTORE, restore, b)
    assert (error.code, error.details["reason"]) == ("invalid_input", "invalid_backup")
    restored = await keys.call(Crypto.KEY_RESTORE.message_type, restore, tenant=a)
    assert restored["name"] == "copy"


async def test_secret_keys_are_sealed_to_their_tenant(
    keys: KeysUnderTest, tenants: tuple[str, str], pg_pool: asyncpg.Pool
) -> None:
    a, b = tenants
    await keys.store.of(a).create("bound", "X-Wing", KeySettings(), None)
    sealed = await pg_pool.fetchval(
        "SELECT encrypted_secret_key FROM crypto.key_versions WHERE tenant = $1 AND name = $2",
        a,
        "bound",
    )
    assert sealed[0] == envelope.FORMAT_V4  # bound to its tenant, naming its KEK
    opened = envelope.open_sealed(
        KEK, tenant=a, name="bound", version=1, key_type="X-Wing", sealed=sealed
    )
    assert len(opened) == 32
    # A row copied to another tenant (or to default) does not open there.
    for other in (b, DEFAULT_TENANT):
        with pytest.raises(envelope.EnvelopeError):
            envelope.open_sealed(
                KEK, tenant=other, name="bound", version=1, key_type="X-Wing", sealed=sealed
            )


async def test_each_tenant_has_its_own_key_quota(
    pg_pool: asyncpg.Pool, registry: Registry, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    keys = KeysUnderTest(pg_pool, registry, max_keys=2)
    for name in ("k1", "k2"):
        await keys.call(CREATE.message_type, {"name": name, "type": "X-Wing"}, tenant=a)
    error = await refused(keys, CREATE, {"name": "k3", "type": "X-Wing"}, a)
    assert isinstance(error, QuotaExceeded)
    assert (error.code, error.http_status) == ("quota_exceeded", 403)
    assert error.details == {"reason": "quota_exceeded", "quota": "managed_keys", "limit": 2}
    # Another tenant's quota is its own; an existing name is not a new key.
    await keys.call(CREATE.message_type, {"name": "k3", "type": "X-Wing"}, tenant=b)
    again = await refused(keys, CREATE, {"name": "k1", "type": "X-Wing"}, a)
    assert again.code == "conflict"
    # A restore under a new name counts; one that replaces a key does not.
    blob = (await keys.call(Crypto.KEY_BACKUP.message_type, {"name": "k1"}, tenant=a))["backup"]
    over = await refused(keys, Crypto.KEY_RESTORE, {"backup": blob, "name": "k9"}, a)
    assert over.code == "quota_exceeded"
    replaced = await keys.call(
        Crypto.KEY_RESTORE.message_type, {"backup": blob, "name": "k2", "force": True}, tenant=a
    )
    assert replaced["name"] == "k2"


async def test_the_quota_holds_under_concurrent_creates(
    pg_pool: asyncpg.Pool, registry: Registry, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    store = KeyStore(pg_pool, KEK, registry, max_keys=3).of(a)
    outcomes = await asyncio.gather(
        *(store.create(f"c{i}", "ML-DSA-44", KeySettings(), None) for i in range(8)),
        return_exceptions=True,
    )
    made = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(made) == 3
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if isinstance(o, BaseException))
    assert await store.count() == 3


async def test_node_pins_and_nonces_are_per_tenant(
    registry: Registry,
    pg_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
    tenants: tuple[str, str],
) -> None:
    a, b = tenants
    node = f"node-{uuid.uuid4().hex[:8]}"
    managed = InMemoryManagedKeys(registry)
    managed.create("signer-a", "ML-DSA-65")
    managed.create("signer-b", "ML-DSA-65")
    mesh = MeshOperations(make_deps(registry, keystore=managed, pool=pg_pool, redis=redis_client))
    in_a, in_b = context(caller=principal(a)), context(caller=principal(b))
    signed_a = await mesh.sign_beacon(BeaconSignRequest(key_name="signer-a", node_id=node), in_a)
    signed_b = await mesh.sign_beacon(BeaconSignRequest(key_name="signer-b", node_id=node), in_b)
    first_a = await mesh.verify_beacon(verify_request(signed_a), in_a)
    # The same node id in tenant b is another node: its first key is pinned there too.
    first_b = await mesh.verify_beacon(verify_request(signed_b), in_b)
    assert (first_a.valid, first_a.pinned) == (True, True)
    assert (first_b.valid, first_b.pinned) == (True, True)
    # Each tenant's pin holds: a's beacon is a key mismatch in b.
    assert (
        await mesh.verify_beacon(verify_request(signed_a), context(caller=principal(b)))
    ).reason == ("key_mismatch")
    pins = await pg_pool.fetch(
        "SELECT tenant FROM crypto.node_pins WHERE node_id = $1 ORDER BY tenant", node
    )
    assert [row["tenant"] for row in pins] == sorted([a, b])


async def test_keys_written_before_tenants_belong_to_default(
    stack: StackEndpoints, registry: Registry
) -> None:
    async with scratch_pool(stack.postgres_dsn, "crypto", MIGRATIONS, "002_mesh.sql") as pool:
        # A key as the code before tenants wrote it (envelope format 0x01).
        public_key, secret_key = registry.kem("X-Wing").keypair()
        sealed = legacy_seal(KEK, name="old", version=1, key_type="X-Wing", secret_key=secret_key)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO crypto.keys (name, type, latest_version) VALUES ('old', 'X-Wing', 1)"
            )
            await conn.execute(
                "INSERT INTO crypto.key_versions (name, version, public_key,"
                " encrypted_secret_key) VALUES ('old', 1, $1, $2)",
                public_key,
                sealed,
            )
        await pool.execute("INSERT INTO crypto.node_pins (node_id, public_key) VALUES ('n1', 'x')")
        assert await migrate(pool, "crypto", MIGRATIONS) == [
            "003_tenants.sql",
            "004_rotate_request.sql",
        ]
        rows = await pool.fetch("SELECT tenant FROM crypto.keys")
        assert [row["tenant"] for row in rows] == [DEFAULT_TENANT]
        pins = await pool.fetch("SELECT tenant, node_id FROM crypto.node_pins")
        assert [(r["tenant"], r["node_id"]) for r in pins] == [(DEFAULT_TENANT, "n1")]
        store = KeyStore(pool, KEK, registry)
        loaded = await store.load("old", [1])
        assert loaded.secret_key(1) == secret_key
        with pytest.raises(NotFound):
            await store.of("elsewhere").read("old")


async def test_the_worker_refuses_requests_straight_on_kafka_for_another_tenant(
    kafka_settings: KafkaSettings,
    pg_pool: asyncpg.Pool,
    registry: Registry,
    tenants: tuple[str, str],
) -> None:
    """The handlers behind the real Responder on the real broker, asked by a Requester
    as the gateway asks (but with whatever principal header the test chooses)."""
    a, b = tenants
    topic = f"x0.test.crypto-tenancy.{uuid.uuid4().hex[:8]}"
    keys = KeysUnderTest(pg_pool, registry)
    broker = new_broker(kafka_settings)
    responder = responder_under_test(broker, kafka_settings, topic, service="crypto")
    key_handlers.register(responder, keys.deps)
    await responder.ensure_topics()
    await broker.start()
    try:
        reply_topic = f"x0.test.replies.{uuid.uuid4().hex[:8]}"
        async with running_requester(kafka_settings, reply_topic) as requester:
            await responder.wait_assigned()

            async def ask(payload: Any, operation: Any, header: str | None) -> dict[str, Any]:
                return await requester.request(
                    topic, operation.message_type, payload, timeout=20, principal=header
                )

            await ask(CreateKeyRequest(name="mine", type="X-Wing"), CREATE, principal_header(a))
            mine = KeyNameRequest(name="mine")
            assert (await ask(mine, READ, principal_header(a)))["name"] == "mine"
            with pytest.raises(NotFound):
                await ask(mine, READ, principal_header(b))
            with pytest.raises(Unauthenticated):
                await ask(mine, READ, None)
            with pytest.raises(Unauthenticated):
                await ask(mine, READ, '{"tenant": "Not A Tenant"}')
            with pytest.raises(Forbidden) as caught:
                await ask(mine, READ, principal_header(a, scopes=["keys:use"]))
            assert caught.value.details == {"required_scope": "keys:read"}
    finally:
        await responder.close()
        await broker.stop()
