"""X-Wing: the hybrid KEM of X25519 and ML-KEM-768, per draft-connolly-cfrg-xwing-kem-10.

Formats (all lengths in bytes)::

    secret key  sk = 32-byte seed; expanded = SHAKE256(sk, 96)
                ML-KEM-768 keys = KeyGen_internal(d = expanded[0:32], z = expanded[32:64])
                X25519 secret   = expanded[64:96]
    public key  pk = pk_M (1184) || pk_X (32)                                 = 1216
    ciphertext  ct = ct_M (1088) || ct_X (32)                                 = 1120
    shared      ss = SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel)     = 32
                XWingLabel = 5c 2e 2f 2f 5e 5c  ("\\.//^\\")

Both halves run on pyca/cryptography (OpenSSL). The ML-KEM-768 seed ``d || z`` is
exactly what pyca's ``from_seed_bytes`` takes, so key expansion needs nothing else.

X25519 here is the plain RFC 7748 function, as the draft requires: when a peer's value
is a small-order point the result is 32 zero bytes, and X-Wing goes on (ML-KEM carries
the security). OpenSSL refuses to return that all-zero value and pyca raises instead,
so :func:`x25519_raw` puts the zeros back; decapsulation therefore never fails.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from x0_crypto.domain.algorithms import X_WING, KemSizes
from x0_crypto.domain.backends.openssl import invalid_encapsulation_key, openssl_errors

BACKEND = "openssl"
XWING_LABEL = b"\\.//^\\"
SIZES = KemSizes(public_key=1216, secret_key=32, ciphertext=1120, shared_secret=32)
_PK_M, _CT_M = 1184, 1088

#: ``(pk_M, m) -> (ss_M, ct_M)``: a derandomised ML-KEM-768 encapsulation, which pyca lacks.
MlKemEncapsDerand = Callable[[bytes, bytes], tuple[bytes, bytes]]


def x25519_raw(secret: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    """RFC 7748 X25519(secret, peer), all zeros included (see the module docstring)."""
    try:
        return secret.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        # OpenSSL fails the exchange only when the result is the all-zero value.
        return bytes(32)


def combiner(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    """The draft's combiner: SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel)."""
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


def expand_decapsulation_key(
    sk: bytes,
) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey, bytes, bytes]:
    """``(sk_M, sk_X, pk_M, pk_X)`` from the 32-byte seed (the draft's expandDecapsulationKey)."""
    expanded = hashlib.shake_256(sk).digest(96)
    with openssl_errors(X_WING):
        sk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    sk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    return sk_m, sk_x, sk_m.public_key().public_bytes_raw(), sk_x.public_key().public_bytes_raw()


def public_key_from_seed(sk: bytes) -> bytes:
    """GenerateKeyPairDerand's public key ``pk_M || pk_X`` for a 32-byte seed."""
    _, _, pk_m, pk_x = expand_decapsulation_key(sk)
    return pk_m + pk_x


def _split_public_key(pk: bytes) -> tuple[mlkem.MLKEM768PublicKey, bytes]:
    with openssl_errors(X_WING):
        try:
            return mlkem.MLKEM768PublicKey.from_public_bytes(pk[:_PK_M]), pk[_PK_M:]
        except ValueError:
            raise invalid_encapsulation_key(X_WING) from None


def _encapsulate_x25519(pk_x: bytes, ek_x: x25519.X25519PrivateKey) -> tuple[bytes, bytes]:
    ct_x = ek_x.public_key().public_bytes_raw()
    return ct_x, x25519_raw(ek_x, pk_x)


def encapsulate_derand(
    pk: bytes, eseed: bytes, mlkem_encaps_derand: MlKemEncapsDerand
) -> tuple[bytes, bytes]:
    """The draft's EncapsulateDerand, for known-answer tests: ``(ct, ss)``.

    ``eseed[0:32]`` is ML-KEM's message ``m``, ``eseed[32:64]`` the X25519 ephemeral
    secret. pyca has no derandomised ML-KEM encapsulation, so the caller supplies one.
    """
    _split_public_key(pk)  # the same input check as the randomised path
    pk_m, pk_x = pk[:_PK_M], pk[_PK_M:]
    ct_x, ss_x = _encapsulate_x25519(pk_x, x25519.X25519PrivateKey.from_private_bytes(eseed[32:]))
    ss_m, ct_m = mlkem_encaps_derand(pk_m, eseed[:32])
    return ct_m + ct_x, combiner(ss_m, ss_x, ct_x, pk_x)


@dataclass(frozen=True, slots=True)
class XWing:
    """X-Wing as a :class:`~x0_crypto.domain.backends.base.KemBackend`."""

    algorithm: str = X_WING
    backend: str = BACKEND
    sizes: KemSizes = SIZES

    def keypair(self) -> tuple[bytes, bytes]:
        sk = os.urandom(32)
        return public_key_from_seed(sk), sk

    def encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        pk_m, pk_x = _split_public_key(public_key)
        ss_m, ct_m = pk_m.encapsulate()
        ct_x, ss_x = _encapsulate_x25519(pk_x, x25519.X25519PrivateKey.generate())
        return ct_m + ct_x, combiner(ss_m, ss_x, ct_x, pk_x)

    def decapsulate(self, secret_key: bytes, ciphertext: bytes) -> bytes:
        sk_m, sk_x, _, pk_x = expand_decapsulation_key(secret_key)
        ct_m, ct_x = ciphertext[:_CT_M], ciphertext[_CT_M:]
        ss_m = sk_m.decapsulate(ct_m)
        return combiner(ss_m, x25519_raw(sk_x, ct_x), ct_x, pk_x)
