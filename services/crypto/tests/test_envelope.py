"""Envelope encryption of secret keys at rest: round trip, binding, tamper evidence."""

from __future__ import annotations

import os

import pytest

from x0_crypto.domain import envelope

pytestmark = pytest.mark.unit

KEK = os.urandom(32)
SECRET = os.urandom(64)


def _seal(secret: bytes = SECRET, *, kek: bytes = KEK) -> bytes:
    return envelope.seal(kek, name="node-a", version=3, key_type="X-Wing", secret_key=secret)


def _open(
    sealed: bytes,
    *,
    kek: bytes = KEK,
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
    # 1 format byte, 12 + 48 wrapped data key, 12 nonce, secret + 16-byte tag.
    assert len(sealed) == 1 + 12 + 48 + 12 + len(SECRET) + 16
    assert sealed[0] == envelope.FORMAT_V1
    assert SECRET not in sealed


def test_fresh_data_key_and_nonces_every_time() -> None:
    first, second = _seal(), _seal()
    assert first[1:61] != second[1:61]
    assert first[61:] != second[61:]


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
        _open(sealed, **moved)  # type: ignore[arg-type]


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
    assert sealed[0] == envelope.FORMAT_V2
    assert len(sealed) == len(_seal())
    assert _open(sealed, tenant="acme") == SECRET
    for other in ("default", "acme2", "acm"):
        with pytest.raises(envelope.EnvelopeError):
            _open(sealed, tenant=other)
