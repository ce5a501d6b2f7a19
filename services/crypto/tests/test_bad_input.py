"""Malformed and tampered input: typed errors that leak nothing, or quiet rejection."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from x0_crypto.domain import (
    KEM_ALGORITHMS,
    SIGNATURE_ALGORITHMS,
    InvalidInput,
    Registry,
)

pytestmark = pytest.mark.unit

Call = Callable[[bytes], object]


def _kem_calls(registry: Registry, name: str) -> dict[str, tuple[int, Call]]:
    """field -> (expected length, a call that passes a value for that field only)."""
    kem = registry.kem(name)
    public_key, secret_key = kem.keypair()
    ciphertext, _ = kem.encapsulate(public_key)
    return {
        "public_key": (kem.sizes.public_key, kem.encapsulate),
        "secret_key": (kem.sizes.secret_key, lambda v: kem.decapsulate(v, ciphertext)),
        "ciphertext": (kem.sizes.ciphertext, lambda v: kem.decapsulate(secret_key, v)),
    }


def _signature_calls(registry: Registry, name: str) -> dict[str, tuple[int, Call]]:
    scheme = registry.signature(name)
    public_key, secret_key = scheme.keypair()
    signature = scheme.sign(secret_key, b"m")
    return {
        "secret_key": (scheme.sizes.secret_key, lambda v: scheme.sign(v, b"m")),
        "public_key": (scheme.sizes.public_key, lambda v: scheme.verify(v, b"m", signature)),
        "signature": (scheme.sizes.signature, lambda v: scheme.verify(public_key, b"m", v)),
    }


def _assert_leaks_nothing(err: InvalidInput, value: bytes) -> None:
    text = f"{err} {err!r} {err.details!r}"
    for window in (value[:12], value[-12:]):
        if len(window) >= 8:
            assert window.hex() not in text
            assert repr(window)[2:-1] not in text
    assert all(isinstance(v, str | int | None) for v in err.details.values())


@pytest.mark.parametrize("name", KEM_ALGORITHMS + SIGNATURE_ALGORITHMS)
@pytest.mark.parametrize("delta", [-1, +1, None], ids=["short", "long", "empty"])
def test_wrong_lengths(registry: Registry, name: str, delta: int | None) -> None:
    if name in KEM_ALGORITHMS:
        calls = _kem_calls(registry, name)
    else:
        calls = _signature_calls(registry, name)
    for field, (expected, call) in calls.items():
        # Distinctive bytes, so that a leak into the message would be visible.
        length = 0 if delta is None else expected + delta
        value = hashlib.shake_256(field.encode()).digest(length) if length else b""
        with pytest.raises(InvalidInput) as err:
            call(value)
        assert err.value.code == "invalid_input"
        assert (err.value.algorithm, err.value.field) == (name, field)
        assert (err.value.expected, err.value.actual) == (expected, length)
        assert f"must be {expected} bytes, got {length}" in str(err.value)
        _assert_leaks_nothing(err.value, value)


@pytest.mark.parametrize("name", ["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"])
@pytest.mark.parametrize("offset", [0, -1], ids=["first-byte", "last-byte"])
def test_tampered_mlkem_ciphertext_gives_the_rejection_key(
    registry: Registry, name: str, offset: int
) -> None:
    """Implicit rejection: no error, and exactly K_bar = J(z || c) of FIPS 203."""
    kem = registry.kem(name)
    public_key, secret_key = kem.keypair()
    ciphertext, shared = kem.encapsulate(public_key)
    tampered = bytearray(ciphertext)
    tampered[offset] ^= 0x80
    result = kem.decapsulate(secret_key, bytes(tampered))
    # z is the last 32 bytes of an expanded dk and of a d || z seed alike.
    assert result == hashlib.shake_256(secret_key[-32:] + bytes(tampered)).digest(32)
    assert result != shared


@pytest.mark.parametrize("name", SIGNATURE_ALGORITHMS)
@pytest.mark.parametrize("offset", [0, -1], ids=["first-byte", "last-byte"])
def test_tampered_signature_is_false(registry: Registry, name: str, offset: int) -> None:
    scheme = registry.signature(name)
    public_key, secret_key = scheme.keypair()
    signature = bytearray(scheme.sign(secret_key, b"message"))
    signature[offset] ^= 0x01
    assert scheme.verify(public_key, b"message", bytes(signature)) is False


def test_invalid_input_without_lengths_has_only_a_reason() -> None:
    err = InvalidInput("ML-KEM-768", "public_key", reason="not a valid encapsulation key")
    assert str(err) == "ML-KEM-768 public_key: not a valid encapsulation key"
    assert "expected" not in err.details
