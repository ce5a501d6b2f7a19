"""Beacon bytes, freshness and key-change proofs (domain, no storage)."""

from __future__ import annotations

import struct

import pytest

from x0_crypto.domain import CheckedSignature, InvalidInput, Registry
from x0_crypto.domain import beacons as b

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def mldsa(registry: Registry) -> CheckedSignature:
    return registry.signature("ML-DSA-65")


def framed(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(field)) + field for field in fields)


def test_beacon_message_is_the_documented_encoding() -> None:
    beacon = b.BeaconFields(node_id="node-7", timestamp_ms=1_700_000_000_123, nonce=bytes(16))
    expected = (
        framed(b"x0tta6bl4/beacon/v1", b"node-7")
        + struct.pack(">Q", 1_700_000_000_123)
        + framed(bytes(16))
    )
    assert b.beacon_message(beacon) == expected


def test_key_change_message_is_the_documented_encoding() -> None:
    assert b.key_change_message("node-7", b"pk") == framed(
        b"x0tta6bl4/beacon-key-change/v1", b"node-7", b"pk"
    )


def test_fields_cannot_run_into_each_other() -> None:
    # With plain concatenation these two would sign the same bytes.
    one = b.BeaconFields(node_id="n1", timestamp_ms=5, nonce=bytes(20))
    other = b.BeaconFields(node_id="n", timestamp_ms=5, nonce=b"1" + bytes(19))
    assert b.beacon_message(one) != b.beacon_message(other)


@pytest.mark.parametrize(("length", "ok"), [(15, False), (16, True), (64, True), (65, False)])
def test_nonce_is_16_to_64_bytes(length: int, ok: bool) -> None:
    beacon = b.BeaconFields(node_id="n", timestamp_ms=1, nonce=bytes(length))
    if ok:
        assert b.beacon_message(beacon)
    else:
        with pytest.raises(InvalidInput) as caught:
            b.beacon_message(beacon)
        assert caught.value.field == "nonce"


def test_timestamp_must_fit_u64() -> None:
    b.beacon_message(b.BeaconFields(node_id="n", timestamp_ms=2**64 - 1, nonce=bytes(16)))
    with pytest.raises(InvalidInput) as caught:
        b.beacon_message(b.BeaconFields(node_id="n", timestamp_ms=2**64, nonce=bytes(16)))
    assert caught.value.field == "timestamp_ms"


def test_new_beacon_has_a_fresh_32_byte_nonce() -> None:
    nonces = {b.new_beacon("n", 1).nonce for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(nonce) == 32 for nonce in nonces)


def test_freshness_window_bounds_are_inclusive() -> None:
    now, window = 1_000_000, 60_000
    assert b.freshness(now, now, window) == "ok"
    assert b.freshness(now - window, now, window) == "ok"
    assert b.freshness(now + window, now, window) == "ok"
    assert b.freshness(now - window - 1, now, window) == "stale"
    assert b.freshness(now + window + 1, now, window) == "future"


def test_nonce_is_kept_until_the_beacon_leaves_the_window() -> None:
    now, window, margin = 1_000_000, 60_000, b.CLOCK_SKEW_MARGIN_MS
    assert b.nonce_ttl_ms(now + window, now, window) == 2 * window + margin
    assert b.nonce_ttl_ms(now, now, window) == window + margin
    assert b.nonce_ttl_ms(now - window, now, window) == margin


def test_signature_binds_every_field(mldsa: CheckedSignature) -> None:
    public_key, secret_key = mldsa.keypair()
    beacon = b.new_beacon("node-1", 1_700_000_000_000)
    signature = mldsa.sign(secret_key, b.beacon_message(beacon))
    assert b.is_valid(mldsa, public_key, b.beacon_message(beacon), signature)
    for changed in (
        b.BeaconFields("node-2", beacon.timestamp_ms, beacon.nonce),
        b.BeaconFields(beacon.node_id, beacon.timestamp_ms + 1, beacon.nonce),
        b.BeaconFields(beacon.node_id, beacon.timestamp_ms, bytes(32)),
    ):
        assert not b.is_valid(mldsa, public_key, b.beacon_message(changed), signature)


def test_a_beacon_signature_is_no_key_change_proof(mldsa: CheckedSignature) -> None:
    public_key, secret_key = mldsa.keypair()
    new_public_key, _ = mldsa.keypair()
    proof = mldsa.sign(secret_key, b.key_change_message("n", new_public_key))
    assert b.is_valid(mldsa, public_key, b.key_change_message("n", new_public_key), proof)
    assert not b.is_valid(mldsa, public_key, b.key_change_message("m", new_public_key), proof)
    beacon = b.BeaconFields("n", 1, bytes(16))
    assert not b.is_valid(mldsa, public_key, b.beacon_message(beacon), proof)


def test_a_signature_of_the_wrong_length_is_just_invalid(mldsa: CheckedSignature) -> None:
    public_key, secret_key = mldsa.keypair()
    signature = mldsa.sign(secret_key, b"m")
    assert not b.is_valid(mldsa, public_key, b"m", signature[:-1])
    assert not b.is_valid(mldsa, public_key, b"m", b"")
    with pytest.raises(InvalidInput):
        b.is_valid(mldsa, public_key[:-1], b"m", signature)
