"""Ed25519+ML-DSA-65: concatenated format, both halves required, domain separation."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from x0_crypto.domain import Registry
from x0_crypto.domain.hybrid import ed25519_mldsa as hybrid

pytestmark = pytest.mark.unit

NAME = "Ed25519+ML-DSA-65"
MESSAGE = b"transfer 10 units to node 7"


@pytest.fixture(scope="module")
def signed(registry: Registry) -> tuple[bytes, bytes, bytes]:
    scheme = registry.signature(NAME)
    public_key, secret_key = scheme.keypair()
    return public_key, secret_key, scheme.sign(secret_key, MESSAGE)


def test_sizes_and_format(registry: Registry, signed: tuple[bytes, bytes, bytes]) -> None:
    public_key, secret_key, signature = signed
    info = registry.info(NAME)
    assert (info.kind, info.backend) == ("signature", "openssl")
    assert (len(public_key), len(secret_key), len(signature)) == (1984, 64, 3373)
    assert (info.sizes.public_key, info.sizes.secret_key, info.sizes.signature) == (1984, 64, 3373)
    # secret = Ed25519 seed || ML-DSA-65 seed; public = the two public keys, in that order.
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(secret_key[:32])
    ml = mldsa.MLDSA65PrivateKey.from_seed_bytes(secret_key[32:])
    assert public_key == ed.public_key().public_bytes_raw() + ml.public_key().public_bytes_raw()
    assert hybrid.public_key_from_seeds(secret_key) == public_key


def test_round_trip(registry: Registry, signed: tuple[bytes, bytes, bytes]) -> None:
    public_key, _, signature = signed
    assert registry.signature(NAME).verify(public_key, MESSAGE, signature)


def test_each_half_signs_the_domain_separated_message(signed: tuple[bytes, bytes, bytes]) -> None:
    public_key, _, signature = signed
    ed_pk = ed25519.Ed25519PublicKey.from_public_bytes(public_key[:32])
    ml_pk = mldsa.MLDSA65PublicKey.from_public_bytes(public_key[32:])
    ed_pk.verify(signature[:64], hybrid.DOMAIN + MESSAGE)
    ml_pk.verify(signature[64:], hybrid.DOMAIN + MESSAGE)
    # A half cut out of the pair is no plain signature over the message itself.
    with pytest.raises(InvalidSignature):
        ed_pk.verify(signature[:64], MESSAGE)
    with pytest.raises(InvalidSignature):
        ml_pk.verify(signature[64:], MESSAGE)


@pytest.mark.parametrize(
    "offset", [0, 63, 64, 3372], ids=["ed-first", "ed-last", "mldsa-first", "mldsa-last"]
)
def test_tampering_either_half_fails(
    registry: Registry, signed: tuple[bytes, bytes, bytes], offset: int
) -> None:
    public_key, _, signature = signed
    tampered = bytearray(signature)
    tampered[offset] ^= 0x01
    assert not registry.signature(NAME).verify(public_key, MESSAGE, bytes(tampered))


def test_tampered_message_fails(registry: Registry, signed: tuple[bytes, bytes, bytes]) -> None:
    public_key, _, signature = signed
    assert not registry.signature(NAME).verify(public_key, MESSAGE + b"0", signature)


def test_one_valid_half_is_not_enough(
    registry: Registry, signed: tuple[bytes, bytes, bytes]
) -> None:
    """Splice in a half made by another key pair: the other half alone must not pass."""
    scheme = registry.signature(NAME)
    public_key, _, signature = signed
    other_pk, other_sk = scheme.keypair()
    other = scheme.sign(other_sk, MESSAGE)
    assert not scheme.verify(public_key, MESSAGE, signature[:64] + other[64:])  # Ed25519 valid
    assert not scheme.verify(public_key, MESSAGE, other[:64] + signature[64:])  # ML-DSA valid
    # The spliced pair is exactly right for the spliced public key: the format is plain.
    assert scheme.verify(public_key[:32] + other_pk[32:], MESSAGE, signature[:64] + other[64:])
