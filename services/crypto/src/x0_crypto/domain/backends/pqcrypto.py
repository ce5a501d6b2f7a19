"""ML-KEM through the ``pqcrypto`` package (PQClean-derived code in a Rust extension).

The service uses it for ML-KEM-512, which pyca/OpenSSL does not offer; it can serve 768
and 1024 too, which the conformance tests use to reach the ACVP decapsulation vectors.

Secret keys here are FIPS 203 *expanded* decapsulation keys
``dk = dk_PKE || ek || H(ek) || z`` (1632/2400/3168 bytes), not seeds: pqcrypto has no
seeded or derandomised key generation, so the seed never exists outside it. liboqs
uses the same expanded form, which is what lets ML-KEM-512 move between the two
without re-keying. pqcrypto runs both FIPS 203 input checks itself: the modulus check
on encapsulation keys (section 7.2) and the hash check on decapsulation keys (7.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from pqcrypto.kem import ml_kem_512, ml_kem_768, ml_kem_1024

from x0_crypto.domain.algorithms import ML_KEM_512, ML_KEM_768, ML_KEM_1024, KemSizes
from x0_crypto.errors import InvalidInput, UnknownAlgorithm

BACKEND = "pqcrypto"

_MODULES: dict[str, ModuleType] = {
    ML_KEM_512: ml_kem_512,
    ML_KEM_768: ml_kem_768,
    ML_KEM_1024: ml_kem_1024,
}
PQCRYPTO_KEMS = tuple(_MODULES)


@dataclass(frozen=True, slots=True)
class PqcryptoKem:
    """ML-KEM with the expanded FIPS 203 decapsulation key as the secret key."""

    algorithm: str
    backend: str = BACKEND

    def __post_init__(self) -> None:
        if self.algorithm not in _MODULES:
            raise UnknownAlgorithm(self.algorithm, known=PQCRYPTO_KEMS)

    @property
    def sizes(self) -> KemSizes:
        # Read from the library rather than restated, so a change there cannot go unseen.
        mod = _MODULES[self.algorithm]
        return KemSizes(
            public_key=mod.PUBLIC_KEY_SIZE,
            secret_key=mod.SECRET_KEY_SIZE,
            ciphertext=mod.CIPHERTEXT_SIZE,
            shared_secret=mod.SHARED_SECRET_SIZE,
        )

    def keypair(self) -> tuple[bytes, bytes]:
        public_key, secret_key = _MODULES[self.algorithm].keygen()
        return bytes(public_key), bytes(secret_key)

    def encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        try:
            ciphertext, shared_secret = _MODULES[self.algorithm].encaps(public_key)
        except ValueError:
            # Lengths are checked before any backend runs; pqcrypto reports the modulus
            # check failing as "invalid public key length", which would mislead.
            raise InvalidInput(
                self.algorithm, "public_key", reason="not a valid encapsulation key"
            ) from None
        return bytes(ciphertext), bytes(shared_secret)

    def decapsulate(self, secret_key: bytes, ciphertext: bytes) -> bytes:
        try:
            return bytes(_MODULES[self.algorithm].decaps(secret_key, ciphertext))
        except ValueError:
            # Decapsulation itself never fails (implicit rejection): this is the hash check.
            raise InvalidInput(
                self.algorithm, "secret_key", reason="not a valid decapsulation key"
            ) from None
