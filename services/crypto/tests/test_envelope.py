"""Envelope encryption of secret keys at rest: round trip, binding, tamper evidence."""

from __future__ import annotations

import os

import pytest

from x0_crypto.domain import envelope

from .kek_support import legacy_seal

pytestmark = pytest.mark.unit

KEK = os.urandom(32)
SECRET = os.urandom(64)


def _seal(secret: bytes = SECRET, *, kek: envelope.Keyring | bytes = KEK) -> bytes:
    return envelope.seal(kek, name="node-a", version=3, key_type="X-Wing", secret_key=secret)


def _open(
    sealed: bytes,
    *,
    kek: envelope.Keyring | bytes = KEK,
    tenant: str = "default",
    name: str = "node-a",
    version: int = 3,
    key_type: str = "X-Wing",
) -> bytes:
    return envelope.open_sealed(
        kek, tenant=tenant, name=name, version=version, key_type=key_type, sealed=sealed
    )


def test_round_trip_and_layout() -> None:
    sealed = _seal()
    assert _open(sealed) == SECRET
    # 1 format byte, 8-byte KEK id, 12 + 48 wrapped data key, 12 nonce, secret + tag.
    assert len(sealed) == 1 + 8 + 12 + 48 + 12 + len(SECRET) + 16
    assert sealed[0] == envelope.FORMAT_V3
    assert sealed[1:9] == envelope.kek_id(KEK)
    assert SECRET not in sealed


def test_fresh_data_key_and_nonces_every_time() -> None:
    first, second = _seal(), _seal()
    assert first[9:69] != second[9:69]
    assert first[69:] != second[69:]


@pytest.mark.parametrize(
    "moved",
    [
        {"name": "node-b"},
        {"version": 4},
        {"key_type": "ML-KEM-768"},
        # Length prefixes: moving bytes from the name into the type changes the encoding.
        {"name": "node-", "key_type": "aX-Wing"},
        {"tenant": "acme"},
    ],
    ids=["name", "version", "type", "boundary", "tenant"],
)
def test_bound_to_name_version_and_type(moved: dict[str, str | int]) -> None:
    sealed = _seal()
    with pytest.raises(envelope.EnvelopeError):
        _open(sealed, **moved)


def test_every_byte_is_authenticated() -> None:
    sealed = _seal(os.urandom(32))
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(envelope.EnvelopeError):
            _open(bytes(tampered))


def test_wrong_kek_and_truncation_fail() -> None:
    sealed = _seal()
    with pytest.raises(envelope.EnvelopeError):
        _open(sealed, kek=os.urandom(32))
    for length in (0, 1, envelope.MIN_SEALED_BYTES - 1, len(sealed) - 1):
        with pytest.raises(envelope.EnvelopeError):
            _open(sealed[:length])


def test_error_says_nothing_about_the_bytes() -> None:
    with pytest.raises(envelope.EnvelopeError) as caught:
        _open(_seal()[:-1])
    assert str(caught.value) == ""
    assert caught.value.__cause__ is None


def test_kek_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _seal(kek=os.urandom(16))


def test_a_named_tenants_key_is_bound_to_its_tenant() -> None:
    sealed = envelope.seal(
        KEK, tenant="acme", name="node-a", version=3, key_type="X-Wing", secret_key=SECRET
    )
    assert sealed[0] == envelope.FORMAT_V4
    assert len(sealed) == len(_seal())
    assert _open(sealed, tenant="acme") == SECRET
    for other in ("default", "acme2", "acm"):
        with pytest.raises(envelope.EnvelopeError):
            _open(sealed, tenant=other)


# -- KEK ids and rotation ------------------------------------------------------------

OLD, NEW = os.urandom(32), os.urandom(32)


def test_kek_id_is_a_stable_fingerprint_not_the_key() -> None:
    assert envelope.kek_id(KEK) == envelope.kek_id(bytes(KEK))
    assert len(envelope.kek_id(KEK)) == 8
    assert envelope.kek_id(OLD) != envelope.kek_id(NEW)
    assert envelope.kek_id(KEK) not in KEK
    assert envelope.kek_id(KEK).hex() not in repr(envelope.Keyring(KEK))
    assert KEK.hex() not in repr(envelope.Keyring(KEK, (OLD,)))


def test_a_previous_kek_opens_what_it_sealed_and_new_blobs_use_the_current() -> None:
    old_blob = _seal(kek=OLD)
    ring = envelope.Keyring(NEW, (OLD,))
    assert _open(old_blob, kek=ring) == SECRET
    assert envelope.wrapped_by(old_blob) == envelope.kek_id(OLD).hex()
    assert envelope.wrapped_by(_seal(kek=ring)) == envelope.kek_id(NEW).hex()
    assert ring.ids() == [envelope.kek_id(NEW).hex(), envelope.kek_id(OLD).hex()]


def test_without_the_kek_that_wrapped_it_a_blob_does_not_open() -> None:
    with pytest.raises(envelope.EnvelopeError):
        _open(_seal(kek=OLD), kek=envelope.Keyring(NEW))


@pytest.mark.parametrize("tenant", ["default", "acme"])
def test_blobs_from_before_kek_ids_open_with_current_or_previous(tenant: str) -> None:
    legacy = legacy_seal(
        OLD, tenant=tenant, name="node-a", version=3, key_type="X-Wing", secret_key=SECRET
    )
    assert legacy[0] == (envelope.FORMAT_V1 if tenant == "default" else envelope.FORMAT_V2)
    assert envelope.wrapped_by(legacy) == envelope.NO_KEK_ID
    assert _open(legacy, kek=OLD, tenant=tenant) == SECRET
    assert _open(legacy, kek=envelope.Keyring(NEW, (OLD,)), tenant=tenant) == SECRET
    with pytest.raises(envelope.EnvelopeError):
        _open(legacy, kek=NEW, tenant=tenant)


@pytest.mark.parametrize("tenant", ["default", "acme"])
def test_rewrap_moves_the_data_key_to_the_current_kek_only(tenant: str) -> None:
    where = {"tenant": tenant, "name": "node-a", "version": 3, "key_type": "X-Wing"}
    for before in (
        envelope.seal(OLD, secret_key=SECRET, **where),
        legacy_seal(OLD, secret_key=SECRET, **where),
    ):
        after = envelope.rewrap(envelope.Keyring(NEW, (OLD,)), sealed=before, **where)
        assert envelope.wrapped_by(after) == envelope.kek_id(NEW).hex()
        # The secret key's ciphertext is kept; only the header changed.
        assert after[-(len(SECRET) + 16 + 12) :] == before[-(len(SECRET) + 16 + 12) :]
        assert _open(after, kek=NEW, tenant=tenant) == SECRET
        with pytest.raises(envelope.EnvelopeError):
            _open(after, kek=OLD, tenant=tenant)
        with pytest.raises(envelope.EnvelopeError):
            envelope.rewrap(NEW, sealed=before, **where)


def test_a_forged_kek_id_does_not_open() -> None:
    sealed = bytearray(_seal(kek=OLD))
    sealed[1:9] = envelope.kek_id(NEW)
    with pytest.raises(envelope.EnvelopeError):
        _open(bytes(sealed), kek=envelope.Keyring(NEW, (OLD,)))
