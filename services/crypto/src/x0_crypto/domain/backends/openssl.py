"""ML-KEM-768/1024 and ML-DSA-44/65/87 on OpenSSL, through pyca/cryptography (>= 50).

Secret keys are stored as the seeds FIPS 203/204 define, because that is the only
private form pyca can both export (``private_bytes_raw``) and import
(``from_seed_bytes``):

- ML-KEM: the 64-byte seed ``d || z`` of ML-KEM.KeyGen_internal. The 2400/3168-byte
  expanded decapsulation key is derived inside OpenSSL on every load and never leaves it.
- ML-DSA: the 32-byte seed ``xi`` of ML-DSA.KeyGen_internal.

Seeds are also the smallest and the recommended storage form (a seed determines the
whole key pair). pyca offers no derandomised encapsulation; signing uses OpenSSL's
default hedged (randomised) ML-DSA. The FIPS 204 context string (0-255 bytes, empty by
default) is the ``context`` argument of pyca's ``sign``/``verify`` (pyca >= 50); an
empty one is the same as none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

from x0_crypto.domain.algorithms import (
    ML_DSA_44,
    ML_DSA_65,
    ML_DSA_87,
    ML_KEM_768,
    ML_KEM_1024,
    KemSizes,
    SignatureSizes,
)
from x0_crypto.errors import BackendUnavailable, InvalidInput, UnknownAlgorithm

BACKEND = "openssl"

# pyca's (private, public) key classes per algorithm, and the lengths of what we store.
_KEMS: dict[str, tuple[Any, Any, KemSizes]] = {
    ML_KEM_768: (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, KemSizes(1184, 64, 1088, 32)),
    ML_KEM_1024: (
        mlkem.MLKEM1024PrivateKey,
        mlkem.MLKEM1024PublicKey,
        KemSizes(1568, 64, 1568, 32),
    ),
}
_SIGNATURES: dict[str, tuple[Any, Any, SignatureSizes]] = {
    ML_DSA_44: (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey, SignatureSizes(1312, 32, 2420)),
    ML_DSA_65: (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey, SignatureSizes(1952, 32, 3309)),
    ML_DSA_87: (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey, SignatureSizes(2592, 32, 4627)),
}

OPENSSL_KEMS = tuple(_KEMS)
OPENSSL_SIGNATURES = tuple(_SIGNATURES)


@contextmanager
def openssl_errors(algorithm: str) -> Iterator[None]:
    """Turn pyca's "this OpenSSL lacks the algorithm" into :class:`BackendUnavailable`."""
    try:
        yield
    except UnsupportedAlgorithm as exc:
        raise BackendUnavailable(BACKEND, str(exc), algorithm=algorithm) from None


def invalid_encapsulation_key(algorithm: str) -> InvalidInput:
    """The error for an ML-KEM key that fails the FIPS 203 section 7.2 modulus check.

    pyca reports it as a ValueError about the length; lengths are checked before any
    backend runs, so the check is the only thing that can have failed.
    """
    return InvalidInput(algorithm, "public_key", reason="not a valid encapsulation key")


@dataclass(frozen=True, slots=True)
class _SeededScheme:
    """What the ML-KEM and ML-DSA classes share: one row of their kind's table (pyca's
    private and public key classes, our sizes), and secret keys stored as seeds."""

    algorithm: str
    backend: str = BACKEND
    _table: ClassVar[Mapping[str, tuple[Any, Any, Any]]]

    def __post_init__(self) -> None:
        if self.algorithm not in self._table:
            raise UnknownAlgorithm(self.algorithm, known=tuple(self._table))

    def keypair(self) -> tuple[bytes, bytes]:
        with openssl_errors(self.algorithm):
            key = self._table[self.algorithm][0].generate()
        return key.public_key().public_bytes_raw(), key.private_bytes_raw()

    def public_key_from_seed(self, secret_key: bytes) -> bytes:
        """The public key a stored seed determines (FIPS 203 KeyGen_internal, FIPS 204
        ML-DSA.KeyGen_internal)."""
        return bytes(self._private(secret_key).public_key().public_bytes_raw())

    def _public(self, public_key: bytes) -> Any:
        with openssl_errors(self.algorithm):
            return self._table[self.algorithm][1].from_public_bytes(public_key)

    def _private(self, secret_key: bytes) -> Any:
        with openssl_errors(self.algorithm):
            return self._table[self.algorithm][0].from_seed_bytes(secret_key)


@dataclass(frozen=True, slots=True)
class OpenSslKem(_SeededScheme):
    """ML-KEM-768/1024 with the 64-byte ``d || z`` seed as the secret key."""

    _table = _KEMS

    @property
    def sizes(self) -> KemSizes:
        return _KEMS[self.algorithm][2]

    def encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        try:
            key = self._public(public_key)
        except ValueError:
            raise invalid_encapsulation_key(self.algorithm) from None
        shared_secret, ciphertext = key.encapsulate()
        return ciphertext, shared_secret

    def decapsulate(self, secret_key: bytes, ciphertext: bytes) -> bytes:
        return bytes(self._private(secret_key).decapsulate(ciphertext))


@dataclass(frozen=True, slots=True)
class OpenSslSignature(_SeededScheme):
    """ML-DSA-44/65/87 with the 32-byte seed ``xi`` as the secret key."""

    _table = _SIGNATURES

    @property
    def sizes(self) -> SignatureSizes:
        return _SIGNATURES[self.algorithm][2]

    def sign(self, secret_key: bytes, message: bytes, *, context: bytes = b"") -> bytes:
        return bytes(self._private(secret_key).sign(message, context))

    def verify(
        self, public_key: bytes, message: bytes, signature: bytes, *, context: bytes = b""
    ) -> bool:
        key = self._public(public_key)
        try:
            key.verify(signature, message, context)
        except InvalidSignature:
            return False
        return True
