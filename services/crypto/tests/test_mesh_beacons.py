"""Beacon verification as the worker runs it, on the real PostgreSQL and Redis.

Each test uses node ids of its own, so tests do not see each other's pins or nonces.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from x0_common.events.crypto import BeaconSignRequest, SignedBeacon
from x0_common.metrics import new_registry
from x0_common.testing.principals import principal
from x0_crypto.domain import InvalidInput, Registry
from x0_crypto.domain.beacons import key_change_message
from x0_crypto.handlers.mesh import MeshOperations, wall_clock_ms

from .memory_keys import InMemoryManagedKeys
from .mesh_support import WINDOW_MS, context, make_deps, verify_request

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(registry: Registry) -> InMemoryManagedKeys:
    return InMemoryManagedKeys(registry)


@pytest.fixture
def node() -> str:
    return f"node-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mesh_at(
    registry: Registry,
    keys: InMemoryManagedKeys,
    pg_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> Callable[..., MeshOperations]:
    """Operations whose clock reads ``clock()`` (default: the wall clock)."""

    def build(clock: Callable[[], int] = wall_clock_ms, **deps_args: object) -> MeshOperations:
        deps = make_deps(registry, keystore=keys, pool=pg_pool, redis=redis_client, **deps_args)
        return MeshOperations(deps, clock_ms=clock)

    return build


async def _sign(mesh: MeshOperations, key_name: str, node_id: str) -> SignedBeacon:
    return await mesh.sign_beacon(BeaconSignRequest(key_name=key_name, node_id=node_id), context())


async def _pin_of(pool: asyncpg.Pool, node_id: str) -> bytes | None:
    return await pool.fetchval(
        "SELECT public_key FROM crypto.node_pins WHERE node_id = $1", node_id
    )


async def test_first_beacon_is_valid_and_pins_its_key(mesh_at, keys, node, pg_pool) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    signed = await _sign(mesh, node, node)
    result = await mesh.verify_beacon(verify_request(signed), context())
    assert (result.valid, result.reason, result.pinned) == (True, "ok", True)
    assert await _pin_of(pg_pool, node) == signed.public_key
    again = await mesh.verify_beacon(verify_request(await _sign(mesh, node, node)), context())
    assert (again.valid, again.reason, again.pinned) == (True, "ok", False)


async def test_the_same_beacon_twice_is_replayed(mesh_at, keys, node) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    request = verify_request(await _sign(mesh, node, node))
    assert (await mesh.verify_beacon(request, context())).reason == "ok"
    second = await mesh.verify_beacon(request, context())
    assert (second.valid, second.reason) == (False, "replayed")
    # Another worker (its own operations object) sees the same nonce in Redis.
    third = await mesh_at().verify_beacon(request, context())
    assert third.reason == "replayed"


async def test_a_redelivered_request_gets_its_first_answer(mesh_at, keys, node) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    request = verify_request(await _sign(mesh, node, node))
    first = context()
    assert (await mesh.verify_beacon(request, first)).reason == "ok"
    assert (await mesh.verify_beacon(request, first)).reason == "ok"
    # The same correlation id from another caller is not the same request.
    stranger = context(first.correlation_id, principal(subject="someone-else"))
    assert (await mesh.verify_beacon(request, stranger)).reason == "replayed"


async def test_beacons_outside_the_window_are_rejected(mesh_at, keys, node) -> None:
    now = wall_clock_ms()
    keys.create(node, "ML-DSA-65")
    verifier = mesh_at(lambda: now)
    for offset, reason in [
        (-WINDOW_MS - 1, "stale"),
        (WINDOW_MS + 1, "future"),
        (-WINDOW_MS, "ok"),
        (WINDOW_MS, "ok"),
    ]:
        signed = await _sign(mesh_at(lambda offset=offset: now + offset), node, node)
        result = await verifier.verify_beacon(verify_request(signed), context())
        assert (result.valid, result.reason) == (reason == "ok", reason), offset


async def test_a_rejected_beacon_does_not_burn_its_nonce(mesh_at, keys, node) -> None:
    now = wall_clock_ms()
    keys.create(node, "ML-DSA-65")
    request = verify_request(await _sign(mesh_at(lambda: now + WINDOW_MS + 1_000), node, node))
    assert (await mesh_at(lambda: now).verify_beacon(request, context())).reason == "future"
    # Two seconds later the same beacon is inside the window, and still never seen.
    later = mesh_at(lambda: now + 2_000)
    assert (await later.verify_beacon(request, context())).reason == "ok"
    assert (await later.verify_beacon(request, context())).reason == "replayed"


async def test_a_bad_signature_touches_nothing(mesh_at, keys, node, pg_pool) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    signed = await _sign(mesh, node, node)
    flipped = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    for signature in (flipped, signed.signature[:-1], b""):
        result = await mesh.verify_beacon(verify_request(signed, signature=signature), context())
        assert (result.valid, result.reason) == (False, "bad_signature")
    other = keys.create(f"{node}-other", "ML-DSA-65")
    result = await mesh.verify_beacon(
        verify_request(signed, public_key=other.public_key), context()
    )
    assert result.reason == "bad_signature"
    assert await _pin_of(pg_pool, node) is None
    assert (await mesh.verify_beacon(verify_request(signed), context())).reason == "ok"


async def test_malformed_input_is_invalid_input(mesh_at, keys, node) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    signed = await _sign(mesh, node, node)
    with pytest.raises(InvalidInput) as caught:
        await mesh.verify_beacon(verify_request(signed, public_key=b"\1" * 32), context())
    assert (caught.value.field, caught.value.http_status) == ("public_key", 400)
    short_nonce = signed.beacon.model_copy(update={"nonce": b"\0" * 8})
    with pytest.raises(InvalidInput) as caught:
        await mesh.verify_beacon(verify_request(signed, beacon=short_nonce), context())
    assert caught.value.field == "nonce"


async def signing_key(keys: Any, name: str) -> tuple[Any, bytes]:
    """A new managed ML-DSA-65 key ``name``: what ``keys.create`` returns, and the secret
    key of its version 1."""
    created = keys.create(name, "ML-DSA-65")
    return created, await keys.private_key(name, 1)


async def test_key_pinning(mesh_at, keys, node, pg_pool, registry: Registry) -> None:
    mesh = mesh_at()
    mldsa = registry.signature("ML-DSA-65")
    old, old_secret = await signing_key(keys, f"{node}-old")
    new, new_secret = await signing_key(keys, f"{node}-new")
    vouched = key_change_message(node, new.public_key)

    first = await mesh.verify_beacon(
        verify_request(await _sign(mesh, f"{node}-old", node)), context()
    )
    assert (first.reason, first.pinned) == ("ok", True)

    changed = verify_request(await _sign(mesh, f"{node}-new", node))
    no_proof = await mesh.verify_beacon(changed, context())
    assert (no_proof.valid, no_proof.reason) == (False, "key_mismatch")
    by_the_new_key = verify_request(changed, key_change_proof=mldsa.sign(new_secret, vouched))
    assert (await mesh.verify_beacon(by_the_new_key, context())).reason == "bad_key_change"
    for_another_node = mldsa.sign(old_secret, key_change_message(f"{node}-x", new.public_key))
    wrong_node = verify_request(changed, key_change_proof=for_another_node)
    assert (await mesh.verify_beacon(wrong_node, context())).reason == "bad_key_change"
    assert await _pin_of(pg_pool, node) == old.public_key

    # The very beacon refused above passes once the old key vouches for the new one.
    proven = verify_request(changed, key_change_proof=mldsa.sign(old_secret, vouched))
    accepted = await mesh.verify_beacon(proven, context())
    assert (accepted.valid, accepted.reason, accepted.pinned) == (True, "ok", True)
    assert await _pin_of(pg_pool, node) == new.public_key

    stale_key = await mesh.verify_beacon(
        verify_request(await _sign(mesh, f"{node}-old", node)), context()
    )
    assert (stale_key.valid, stale_key.reason) == (False, "key_mismatch")
    later = await mesh.verify_beacon(
        verify_request(await _sign(mesh, f"{node}-new", node)), context()
    )
    assert (later.reason, later.pinned) == ("ok", False)


async def test_a_rotated_managed_key_carries_its_proof(mesh_at, keys, node) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    assert (
        await mesh.verify_beacon(verify_request(await _sign(mesh, node, node)), context())
    ).pinned
    keys.rotate(node)
    signed = await _sign(mesh, node, node)
    assert signed.key_change_proof is not None
    without = await mesh.verify_beacon(verify_request(signed, key_change_proof=None), context())
    assert without.reason == "key_mismatch"
    result = await mesh.verify_beacon(verify_request(signed), context())
    assert (result.valid, result.reason, result.pinned) == (True, "ok", True)


async def test_concurrent_copies_of_a_beacon_pass_once(mesh_at, keys, node) -> None:
    mesh = mesh_at()
    keys.create(node, "ML-DSA-65")
    request = verify_request(await _sign(mesh, node, node))
    results = await asyncio.gather(*(mesh.verify_beacon(request, context()) for _ in range(20)))
    assert Counter(result.reason for result in results) == {"ok": 1, "replayed": 19}


async def test_concurrent_first_pins_one_key_wins(mesh_at, keys, node, pg_pool) -> None:
    for attempt in range(5):
        node_id = f"{node}-{attempt}"
        keys.create(f"{node_id}-a", "ML-DSA-65")
        keys.create(f"{node_id}-b", "ML-DSA-65")
        # Two workers, two keys, one node never seen before.
        first, second = mesh_at(), mesh_at()
        requests = [
            verify_request(await _sign(first, f"{node_id}-a", node_id)),
            verify_request(await _sign(second, f"{node_id}-b", node_id)),
        ]
        results = await asyncio.gather(
            first.verify_beacon(requests[0], context()),
            second.verify_beacon(requests[1], context()),
        )
        assert sorted(r.reason for r in results) == ["key_mismatch", "ok"]
        winner = next(i for i, r in enumerate(results) if r.valid)
        assert results[winner].pinned
        assert await _pin_of(pg_pool, node_id) == requests[winner].public_key


async def test_concurrent_key_changes_one_wins(mesh_at, keys, node, pg_pool, registry) -> None:
    mesh = mesh_at()
    mldsa = registry.signature("ML-DSA-65")
    keys.create(f"{node}-k1", "ML-DSA-65")
    await mesh.verify_beacon(verify_request(await _sign(mesh, f"{node}-k1", node)), context())
    k1_secret = await keys.private_key(f"{node}-k1", 1)
    requests = []
    for name in (f"{node}-k2", f"{node}-k3"):
        keys.create(name, "ML-DSA-65")
        signed = await _sign(mesh, name, node)
        proof = mldsa.sign(k1_secret, key_change_message(node, signed.public_key))
        requests.append(verify_request(signed, key_change_proof=proof))
    results = await asyncio.gather(
        mesh_at().verify_beacon(requests[0], context()),
        mesh_at().verify_beacon(requests[1], context()),
    )
    assert sorted(r.reason for r in results) == ["bad_key_change", "ok"]
    winner = next(i for i, r in enumerate(results) if r.valid)
    assert await _pin_of(pg_pool, node) == requests[winner].public_key


async def test_verifications_are_counted_by_result(mesh_at, keys, node) -> None:
    metrics = new_registry()
    mesh = mesh_at(metrics=metrics)
    keys.create(node, "ML-DSA-65")
    request = verify_request(await _sign(mesh, node, node))
    for _ in range(3):
        await mesh.verify_beacon(request, context())
    name = "x0_crypto_beacon_verifications_total"
    assert metrics.get_sample_value(name, {"service": "crypto", "result": "ok"}) == 1
    assert metrics.get_sample_value(name, {"service": "crypto", "result": "replayed"}) == 2


async def test_a_replayed_beacon_cannot_move_a_pin(mesh_at, keys, node, pg_pool, registry) -> None:
    mesh = mesh_at()
    mldsa = registry.signature("ML-DSA-65")
    k1, k1_secret = await signing_key(keys, f"{node}-k1")
    k2, k2_secret = await signing_key(keys, f"{node}-k2")
    await mesh.verify_beacon(verify_request(await _sign(mesh, f"{node}-k1", node)), context())
    to_k2 = verify_request(
        await _sign(mesh, f"{node}-k2", node),
        key_change_proof=mldsa.sign(k1_secret, key_change_message(node, k2.public_key)),
    )
    assert (await mesh.verify_beacon(to_k2, context())).pinned
    back_to_k1 = verify_request(
        await _sign(mesh, f"{node}-k1", node),
        key_change_proof=mldsa.sign(k2_secret, key_change_message(node, k1.public_key)),
    )
    assert (await mesh.verify_beacon(back_to_k1, context())).pinned
    # The K1 -> K2 proof is valid again now; replaying its beacon must not use it.
    replay = await mesh.verify_beacon(to_k2, context())
    assert (replay.valid, replay.reason, replay.pinned) == (False, "replayed", False)
    assert await _pin_of(pg_pool, node) == k1.public_key
