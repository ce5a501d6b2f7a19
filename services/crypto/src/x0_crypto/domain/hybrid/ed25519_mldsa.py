"""The hybrid signature "Ed25519+ML-DSA-65": valid only when both halves verify.

Formats (all lengths in bytes)::

    secret key  ed_seed (32)  || ml_dsa_xi (32)                  = 64
    public key  ed_pk   (32)  || ml_dsa_pk (1952)                = 1984
    signature   ed_sig  (64)  || ml_dsa_sig (3309)               = 3373

The secret key is both seeds: the Ed25519 private key of RFC 8032 and the ML-DSA-65
seed ``xi`` of FIPS 204, the forms pyca imports and exports. Both halves run on
pyca/cryptography (OpenSSL).

Both halves sign the same domain-separated message ``M' = DOMAIN || message`` (pure
Ed25519; ML-DSA-65 in pure mode with an empty context), where ``DOMAIN`` is
:data:`DOMAIN`. Without the prefix either half, cut out of the pair, would also be an
ordinary signature over ``message`` under that key alone; with it, a stripped half
verifies nowhere but here. Forging a hybrid signature needs forging both halves.

No caller context (FIPS 204 ``ctx``). The construction fixes the ML-DSA-65 context to
the empty string and Ed25519 (pure, RFC 8032) takes none at all, so it defines no place
for one: handing it to the ML-DSA half alone would leave the Ed25519 half unbound to
it, and adding it to ``M'`` would be a different construction (a new ``DOMAIN``
version) whose signatures v1 verifiers reject. Dropping it silently would be worse
than either: a signature "under" one context would verify under every other. So
:meth:`Ed25519MlDsa65.sign` and :meth:`~Ed25519MlDsa65.verify` refuse a non-empty
context with :class:`~x0_crypto.errors.InvalidInput` (``field="context"``); the
empty context, which is also every request's default, is v1 exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from x0_crypto.domain.algorithms import ED25519_ML_DSA_65, SignatureSizes
from x0_crypto.domain.backends.openssl import openssl_errors
from x0_crypto.errors import InvalidInput

BACKEND = "openssl"
#: Prefix of every signed message: names the scheme and its version, ends in a NUL so
#: that no message can extend it into another label.
DOMAIN = b"x0tta6bl4/Ed25519+ML-DSA-65/v1\x00"
SIZES = SignatureSizes(public_key=32 + 1952, secret_key=32 + 32, signature=64 + 3309)
_ED_PK, _ED_SK, _ED_SIG = 32, 32, 64


def _ed_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        # ValueError: 32 bytes that encode no curve point; such a key verifies nothing.
        return False
    return True


def _ml_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    with openssl_errors(ED25519_ML_DSA_65):
        key = mldsa.MLDSA65PublicKey.from_public_bytes(public_key)
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _refuse_context(context: bytes) -> None:
    """The construction defines no caller context (module docstring): refuse, never drop."""
    if context:
        raise InvalidInput(
            ED25519_ML_DSA_65, "context", reason="not supported by this construction"
        )


def public_key_from_seeds(secret_key: bytes) -> bytes:
    """``ed_pk || ml_dsa_pk`` for a stored 64-byte secret key."""
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(secret_key[:_ED_SK])
    with openssl_errors(ED25519_ML_DSA_65):
        ml = mldsa.MLDSA65PrivateKey.from_seed_bytes(secret_key[_ED_SK:])
    return ed.public_key().public_bytes_raw() + ml.public_key().public_bytes_raw()


@dataclass(frozen=True, slots=True)
class Ed25519MlDsa65:
    """The hybrid as a :class:`~x0_crypto.domain.backends.base.SignatureBackend`."""

    algorithm: str = ED25519_ML_DSA_65
    backend: str = BACKEND
    sizes: SignatureSizes = SIZES

    def keypair(self) -> tuple[bytes, bytes]:
        secret_key = os.urandom(_ED_SK) + os.urandom(32)
        return public_key_from_seeds(secret_key), secret_key

    def sign(self, secret_key: bytes, message: bytes, *, context: bytes = b"") -> bytes:
        _refuse_context(context)
        signed = DOMAIN + message
        ed = ed25519.Ed25519PrivateKey.from_private_bytes(secret_key[:_ED_SK])
        with openssl_errors(self.algorithm):
            ml = mldsa.MLDSA65PrivateKey.from_seed_bytes(secret_key[_ED_SK:])
        return ed.sign(signed) + ml.sign(signed)

    def verify(
        self, public_key: bytes, message: bytes, signature: bytes, *, context: bytes = b""
    ) -> bool:
        _refuse_context(context)
        signed = DOMAIN + message
        # Both halves are always checked; there is no secret here for timing to reveal.
        ed_ok = _ed_verify(public_key[:_ED_PK], signed, signature[:_ED_SIG])
        ml_ok = _ml_verify(public_key[_ED_PK:], signed, signature[_ED_SIG:])
        return ed_ok and ml_ok
