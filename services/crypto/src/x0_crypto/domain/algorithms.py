"""Algorithm names, kinds and the byte sizes that describe each one.

Sizes are those of the bytes the serving backend's API takes and returns, which for
secret keys depends on the backend's storage form (see ``x0_crypto.domain``'s table).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import get_args

from x0_common.events.names import KemAlgorithm, SignatureAlgorithm

# Typed against the contract's Literals: a misspelt name fails type checking.
ML_KEM_512: KemAlgorithm = "ML-KEM-512"
ML_KEM_768: KemAlgorithm = "ML-KEM-768"
ML_KEM_1024: KemAlgorithm = "ML-KEM-1024"
X_WING: KemAlgorithm = "X-Wing"
ML_DSA_44: SignatureAlgorithm = "ML-DSA-44"
ML_DSA_65: SignatureAlgorithm = "ML-DSA-65"
ML_DSA_87: SignatureAlgorithm = "ML-DSA-87"
ED25519_ML_DSA_65: SignatureAlgorithm = "Ed25519+ML-DSA-65"

# The names the contract accepts, derived from it rather than listed again.
KEM_ALGORITHMS: tuple[str, ...] = get_args(KemAlgorithm)
SIGNATURE_ALGORITHMS: tuple[str, ...] = get_args(SignatureAlgorithm)
ALL_ALGORITHMS = KEM_ALGORITHMS + SIGNATURE_ALGORITHMS


class Kind(StrEnum):
    """What an algorithm does."""

    KEM = "kem"
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class KemSizes:
    """Byte lengths of a KEM's public key, secret key, ciphertext and shared secret."""

    public_key: int
    secret_key: int
    ciphertext: int
    shared_secret: int


@dataclass(frozen=True, slots=True)
class SignatureSizes:
    """Byte lengths of a signature scheme's public key, secret key and signature."""

    public_key: int
    secret_key: int
    signature: int


@dataclass(frozen=True, slots=True)
class AlgorithmInfo:
    """One row of ``Registry.list_algorithms()``."""

    name: str
    kind: Kind
    backend: str
    sizes: KemSizes | SignatureSizes
