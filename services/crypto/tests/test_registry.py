"""The registry: names, kinds, backends, advertised sizes, and a round trip for each."""

from __future__ import annotations

import pytest

from x0_common.errors import X0Error
from x0_crypto.domain import (
    ALL_ALGORITHMS,
    KEM_ALGORITHMS,
    SIGNATURE_ALGORITHMS,
    BackendUnavailable,
    CryptoError,
    DecryptionFailed,
    InvalidInput,
    KemSizes,
    Kind,
    Registry,
    SignatureSizes,
    UnknownAlgorithm,
    build_registry,
)
from x0_crypto.domain.backends.liboqs import find_liboqs

pytestmark = pytest.mark.unit

# FIPS 203/204, the X-Wing draft and the hybrid's documented format; the secret key is
# the stored form (seeds, except ML-KEM-512's expanded dk).
EXPECTED_SIZES = {
    "ML-KEM-512": KemSizes(800, 1632, 768, 32),
    "ML-KEM-768": KemSizes(1184, 64, 1088, 32),
    "ML-KEM-1024": KemSizes(1568, 64, 1568, 32),
    "X-Wing": KemSizes(1216, 32, 1120, 32),
    "ML-DSA-44": SignatureSizes(1312, 32, 2420),
    "ML-DSA-65": SignatureSizes(1952, 32, 3309),
    "ML-DSA-87": SignatureSizes(2592, 32, 4627),
    "Ed25519+ML-DSA-65": SignatureSizes(1984, 64, 3373),
}


def test_names() -> None:
    assert ALL_ALGORITHMS == (
        "ML-KEM-512",
        "ML-KEM-768",
        "ML-KEM-1024",
        "X-Wing",
        "ML-DSA-44",
        "ML-DSA-65",
        "ML-DSA-87",
        "Ed25519+ML-DSA-65",
    )


def test_list_algorithms(registry: Registry) -> None:
    listed = {info.name: info for info in registry.list_algorithms()}
    assert tuple(listed) == ALL_ALGORITHMS
    for name, info in listed.items():
        assert info.kind is (Kind.KEM if name in KEM_ALGORITHMS else Kind.SIGNATURE)
        assert info.sizes == EXPECTED_SIZES[name]
    expected_512 = "liboqs" if find_liboqs() else "pqcrypto"
    assert {name: info.backend for name, info in listed.items()} == {
        name: (expected_512 if name == "ML-KEM-512" else "openssl") for name in ALL_ALGORITHMS
    }


def test_without_liboqs_ml_kem_512_is_pqcrypto() -> None:
    assert build_registry(use_liboqs=False).info("ML-KEM-512").backend == "pqcrypto"


@pytest.mark.parametrize("name", KEM_ALGORITHMS)
def test_kem_round_trip_and_sizes(registry: Registry, name: str) -> None:
    kem = registry.kem(name)
    public_key, secret_key = kem.keypair()
    ciphertext, shared = kem.encapsulate(public_key)
    assert (len(public_key), len(secret_key), len(ciphertext), len(shared)) == (
        kem.sizes.public_key,
        kem.sizes.secret_key,
        kem.sizes.ciphertext,
        kem.sizes.shared_secret,
    )
    assert kem.decapsulate(secret_key, ciphertext) == shared
    assert kem.keypair() != (public_key, secret_key)


@pytest.mark.parametrize("name", SIGNATURE_ALGORITHMS)
def test_signature_round_trip_and_sizes(registry: Registry, name: str) -> None:
    scheme = registry.signature(name)
    public_key, secret_key = scheme.keypair()
    signature = scheme.sign(secret_key, b"hello")
    assert (len(public_key), len(secret_key), len(signature)) == (
        scheme.sizes.public_key,
        scheme.sizes.secret_key,
        scheme.sizes.signature,
    )
    assert scheme.verify(public_key, b"hello", signature)
    assert scheme.verify(public_key, b"", scheme.sign(secret_key, b""))
    other_pk, _ = scheme.keypair()
    assert not scheme.verify(other_pk, b"hello", signature)


@pytest.mark.parametrize("name", ["ML-KEM-9000", "ml-kem-768", "", "X-Wing "])
def test_unknown_algorithm(registry: Registry, name: str) -> None:
    for lookup in (registry.kem, registry.signature, registry.kind, registry.info):
        with pytest.raises(UnknownAlgorithm) as err:
            lookup(name)
        assert err.value.code == "invalid_input"
        assert err.value.details["reason"] == "unknown_algorithm"
        assert err.value.algorithm == name


def test_kind_mismatch_is_unknown(registry: Registry) -> None:
    """Asking for a signature scheme as a KEM (and back) names no algorithm of that kind."""
    with pytest.raises(UnknownAlgorithm):
        registry.kem("ML-DSA-65")
    with pytest.raises(UnknownAlgorithm):
        registry.signature("X-Wing")


def test_error_tree_and_codes() -> None:
    # The shared codes of x0_common, so the gateway maps them without knowing this package.
    assert [cls.code for cls in (UnknownAlgorithm, InvalidInput, BackendUnavailable)] == [
        "invalid_input",
        "invalid_input",
        "unavailable",
    ]
    assert DecryptionFailed().details == {"reason": "decryption_failed"}
    for cls in (UnknownAlgorithm, InvalidInput, BackendUnavailable, DecryptionFailed):
        assert issubclass(cls, CryptoError)
        assert issubclass(cls, X0Error)
    err = BackendUnavailable("liboqs", "not installed", algorithm="ML-KEM-512")
    assert err.details == {
        "backend": "liboqs",
        "algorithm": "ML-KEM-512",
        "reason": "not installed",
    }


def test_registry_rejects_a_name_of_both_kinds(registry: Registry) -> None:
    kem = registry.kem("X-Wing").inner

    class Clash:
        algorithm = "X-Wing"
        backend = "test"
        sizes = SignatureSizes(1, 1, 1)

        def keypair(self) -> tuple[bytes, bytes]:
            raise NotImplementedError

        def sign(self, secret_key: bytes, message: bytes) -> bytes:
            raise NotImplementedError

        def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
            raise NotImplementedError

    with pytest.raises(ValueError, match="both KEM and signature"):
        Registry([kem], [Clash()])
