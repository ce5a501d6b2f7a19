"""Pure crypto domain: post-quantum and hybrid KEMs and signatures behind one interface.

No I/O and no framework imports (faststream, fastapi, asyncpg, redis) here: handlers
call this layer and translate its :mod:`errors` into typed replies.

=================== ========= ========= ================================== ========
algorithm           kind      backend   secret key stored                  sk bytes
=================== ========= ========= ================================== ========
ML-KEM-512          kem       liboqs if expanded FIPS 203 dk               1632
                              present,
                              else
                              pqcrypto
ML-KEM-768          kem       openssl   FIPS 203 seed d || z               64
ML-KEM-1024         kem       openssl   FIPS 203 seed d || z               64
X-Wing              kem       openssl   draft-10 seed                      32
ML-DSA-44/65/87     signature openssl   FIPS 204 seed xi                   32
Ed25519+ML-DSA-65   signature openssl   Ed25519 seed || ML-DSA-65 seed xi  64
=================== ========= ========= ================================== ========

Use :func:`build_registry` once at start-up and look algorithms up by name.
"""

from x0_crypto.domain.algorithms import (
    ALL_ALGORITHMS,
    KEM_ALGORITHMS,
    SIGNATURE_ALGORITHMS,
    AlgorithmInfo,
    KemSizes,
    Kind,
    SignatureSizes,
)
from x0_crypto.domain.backends.base import KemBackend, SignatureBackend
from x0_crypto.domain.checked import CheckedKem, CheckedSignature
from x0_crypto.domain.registry import Registry, build_registry
from x0_crypto.errors import (
    BackendUnavailable,
    CryptoError,
    DecryptionFailed,
    InvalidInput,
    UnknownAlgorithm,
)

__all__ = [
    "ALL_ALGORITHMS",
    "KEM_ALGORITHMS",
    "SIGNATURE_ALGORITHMS",
    "AlgorithmInfo",
    "BackendUnavailable",
    "CheckedKem",
    "CheckedSignature",
    "CryptoError",
    "DecryptionFailed",
    "InvalidInput",
    "KemBackend",
    "KemSizes",
    "Kind",
    "Registry",
    "SignatureBackend",
    "SignatureSizes",
    "UnknownAlgorithm",
    "build_registry",
]
