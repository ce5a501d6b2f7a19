"""Session and beacon-signing operations as the worker runs them (managed keys in memory)."""

from __future__ import annotations

import pytest

from x0_common.errors import InternalError, NotFound, X0Error
from x0_common.events.crypto import (
    BeaconSignRequest,
    SessionAcceptRequest,
    SessionInitiateRequest,
    SessionInitiateResult,
    SignedBeacon,
)
from x0_common.metrics import new_registry
from x0_crypto.domain import Registry
from x0_crypto.domain.beacons import BeaconFields, beacon_message, key_change_message
from x0_crypto.handlers.mesh import MeshOperations

from .memory_keys import InMemoryManagedKeys
from .mesh_support import context, make_deps

pytestmark = pytest.mark.unit


@pytest.fixture
def keys(registry: Registry) -> InMemoryManagedKeys:
    store = InMemoryManagedKeys(registry)
    store.create("node-a", "X-Wing")
    store.create("node-b", "X-Wing")
    store.create("node-a-mlkem", "ML-KEM-768")
    store.create("node-a-dsa", "ML-DSA-65")
    return store


@pytest.fixture
def mesh(registry: Registry, keys: InMemoryManagedKeys) -> MeshOperations:
    return MeshOperations(make_deps(registry, keystore=keys))


def _over_the_wire(result: SessionInitiateResult) -> SessionInitiateResult:
    return SessionInitiateResult.model_validate_json(result.model_dump_json())


async def _open(mesh: MeshOperations) -> SessionInitiateResult:
    request = SessionInitiateRequest(initiator_key="node-a", responder_key="node-b")
    return _over_the_wire(await mesh.initiate(request, context()))


def _accept_request(opened: SessionInitiateResult, **changes: object) -> SessionAcceptRequest:
    fields = {
        "responder_key": "node-b",
        "responder_key_version": opened.responder_key_version,
        "session_id": opened.session_id,
        "ciphertext": opened.ciphertext,
        "initiator_public_key": opened.initiator_public_key,
    } | changes
    return SessionAcceptRequest.model_validate(fields)


async def test_a_and_b_hold_the_same_keys(mesh: MeshOperations, keys) -> None:
    opened = await _open(mesh)
    assert opened.initiator_public_key == (await keys.public_key("node-a")).public_key
    assert opened.responder_public_key == (await keys.public_key("node-b")).public_key
    accepted = await mesh.accept(_accept_request(opened), context())
    assert accepted.session_id == opened.session_id
    assert accepted.keys == opened.keys
    keys_ = opened.keys
    assert keys_.initiator_to_responder != keys_.responder_to_initiator


async def test_b_uses_the_version_a_encapsulated_to(mesh: MeshOperations, keys) -> None:
    opened = await _open(mesh)
    assert opened.responder_key_version == 1
    keys.rotate("node-b")
    assert (await mesh.accept(_accept_request(opened), context())).keys == opened.keys
    other = await mesh.accept(_accept_request(opened, responder_key_version=2), context())
    assert other.keys != opened.keys  # implicit rejection: no error, other keys
    assert (await _open(mesh)).responder_key_version == 2


async def test_a_tampered_session_gives_b_other_keys(mesh: MeshOperations) -> None:
    opened = await _open(mesh)
    tampered = opened.session_id[:-1] + ("0" if opened.session_id[-1] != "0" else "1")
    accepted = await mesh.accept(_accept_request(opened, session_id=tampered), context())
    assert accepted.keys != opened.keys


@pytest.mark.parametrize(
    ("initiator", "responder"), [("node-a-mlkem", "node-b"), ("node-a", "node-a-dsa")]
)
async def test_keys_of_another_type_are_invalid_input(mesh, initiator, responder) -> None:
    request = SessionInitiateRequest(initiator_key=initiator, responder_key=responder)
    with pytest.raises(X0Error) as caught:
        await mesh.initiate(request, context())
    assert (caught.value.code, caught.value.http_status) == ("invalid_input", 400)


async def test_accept_with_a_key_of_another_type_is_invalid_input(mesh) -> None:
    opened = await _open(mesh)
    with pytest.raises(X0Error) as caught:
        await mesh.accept(_accept_request(opened, responder_key="node-a-mlkem"), context())
    assert (caught.value.code, caught.value.http_status) == ("invalid_input", 400)


async def test_unknown_keys_and_versions_are_not_found(mesh) -> None:
    with pytest.raises(NotFound):
        await mesh.initiate(
            SessionInitiateRequest(initiator_key="node-a", responder_key="nobody"), context()
        )
    opened = await _open(mesh)
    with pytest.raises(NotFound) as caught:
        await mesh.accept(_accept_request(opened, responder_key_version=9), context())
    assert caught.value.http_status == 404


async def test_a_malformed_initiator_key_is_invalid_input(mesh) -> None:
    opened = await _open(mesh)
    with pytest.raises(X0Error) as caught:
        await mesh.accept(_accept_request(opened, initiator_public_key=b"\0" * 32), context())
    assert caught.value.code == "invalid_input"


async def test_a_worker_without_keystore_says_so(registry: Registry) -> None:
    mesh = MeshOperations(make_deps(registry))
    with pytest.raises(InternalError, match="managed keys"):
        await mesh.initiate(SessionInitiateRequest(initiator_key="a", responder_key="b"), context())


async def test_sign_beacon_with_the_latest_version(mesh, keys, registry: Registry) -> None:
    mldsa = registry.signature("ML-DSA-65")
    signed = await mesh.sign_beacon(
        BeaconSignRequest(key_name="node-a-dsa", node_id="node-a"), context()
    )
    current = await keys.public_key("node-a-dsa")
    assert signed.public_key == current.public_key
    assert signed.key_change_proof is None  # version 1: nothing to vouch for it
    assert signed.beacon.node_id == "node-a"
    assert len(signed.beacon.nonce) == 32
    message = beacon_message_of(signed)
    assert mldsa.verify(signed.public_key, message, signed.signature)

    keys.rotate("node-a-dsa")
    rotated = await mesh.sign_beacon(
        BeaconSignRequest(key_name="node-a-dsa", node_id="node-a"), context()
    )
    assert rotated.public_key == (await keys.public_key("node-a-dsa", 2)).public_key
    assert rotated.key_change_proof is not None
    vouched = key_change_message("node-a", rotated.public_key)
    assert mldsa.verify(current.public_key, vouched, rotated.key_change_proof)


async def test_sign_beacon_needs_an_ml_dsa_65_key(mesh) -> None:
    with pytest.raises(X0Error) as caught:
        await mesh.sign_beacon(BeaconSignRequest(key_name="node-a", node_id="node-a"), context())
    assert caught.value.code == "invalid_input"
    with pytest.raises(NotFound):
        await mesh.sign_beacon(BeaconSignRequest(key_name="nobody", node_id="node-a"), context())


async def test_operations_are_counted(registry: Registry, keys) -> None:
    metrics = new_registry()
    mesh = MeshOperations(make_deps(registry, metrics=metrics, keystore=keys))
    await _open(mesh)
    with pytest.raises(NotFound):
        await mesh.initiate(
            SessionInitiateRequest(initiator_key="node-a", responder_key="nobody"), context()
        )
    labels = {"service": "crypto", "algorithm": "X-Wing", "operation": "session_initiate"}
    assert metrics.get_sample_value("x0_crypto_ops_total", labels | {"outcome": "ok"}) == 1
    assert metrics.get_sample_value("x0_crypto_ops_total", labels | {"outcome": "not_found"}) == 1


def beacon_message_of(signed: SignedBeacon) -> bytes:
    beacon = signed.beacon
    return beacon_message(BeaconFields(beacon.node_id, beacon.timestamp_ms, beacon.nonce))
