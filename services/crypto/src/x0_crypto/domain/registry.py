"""Which backend serves which algorithm, and the one way callers reach them.

Default selection (:func:`build_registry`)::

    ML-KEM-512          liboqs when its shared library is installed, else pqcrypto
    ML-KEM-768, -1024   openssl (pyca/cryptography)
    ML-DSA-44, -65, -87 openssl
    X-Wing              openssl (X25519 + ML-KEM-768)
    Ed25519+ML-DSA-65   openssl

A backend is only swapped where the secret-key format stays the same: liboqs and
pqcrypto both keep ML-KEM-512 keys in the expanded FIPS 203 form, so stored keys
survive liboqs being installed or removed. OpenSSL stores seeds and liboqs expanded
keys, so liboqs never takes over the other algorithms even when present.

Every backend the registry returns is wrapped in :mod:`x0_crypto.domain.checked`, so
input lengths are validated before any library sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from x0_crypto.domain.algorithms import (
    ALL_ALGORITHMS,
    ML_KEM_512,
    AlgorithmInfo,
    Kind,
)
from x0_crypto.domain.backends import liboqs
from x0_crypto.domain.backends.base import KemBackend, SignatureBackend
from x0_crypto.domain.backends.openssl import (
    OPENSSL_KEMS,
    OPENSSL_SIGNATURES,
    OpenSslKem,
    OpenSslSignature,
)
from x0_crypto.domain.backends.pqcrypto import PqcryptoKem
from x0_crypto.domain.checked import CheckedKem, CheckedSignature
from x0_crypto.domain.hybrid.ed25519_mldsa import Ed25519MlDsa65
from x0_crypto.domain.hybrid.xwing import XWing
from x0_crypto.errors import BackendUnavailable, UnknownAlgorithm

logger = logging.getLogger(__name__)


class Registry:
    """Algorithm name -> length-checked backend."""

    def __init__(self, kems: Iterable[KemBackend], signatures: Iterable[SignatureBackend]) -> None:
        self._kems = {kem.algorithm: CheckedKem(kem) for kem in kems}
        self._signatures = {sig.algorithm: CheckedSignature(sig) for sig in signatures}
        clash = self._kems.keys() & self._signatures.keys()
        if clash:
            msg = f"algorithms registered as both KEM and signature: {sorted(clash)}"
            raise ValueError(msg)

    def names(self) -> tuple[str, ...]:
        """Every algorithm name, KEMs first."""
        return (*self._kems, *self._signatures)

    def kind(self, name: str) -> Kind:
        """Whether ``name`` is a KEM or a signature scheme."""
        if name in self._kems:
            return Kind.KEM
        if name in self._signatures:
            return Kind.SIGNATURE
        raise UnknownAlgorithm(name, known=self.names())

    def kem(self, name: str) -> CheckedKem:
        """The KEM called ``name``; :class:`UnknownAlgorithm` if there is none."""
        try:
            return self._kems[name]
        except KeyError:
            raise UnknownAlgorithm(name, known=tuple(self._kems)) from None

    def signature(self, name: str) -> CheckedSignature:
        """The signature scheme called ``name``; :class:`UnknownAlgorithm` if none."""
        try:
            return self._signatures[name]
        except KeyError:
            raise UnknownAlgorithm(name, known=tuple(self._signatures)) from None

    def info(self, name: str) -> AlgorithmInfo:
        """Kind, serving backend and sizes of one algorithm."""
        kind = self.kind(name)
        impl: CheckedKem | CheckedSignature
        impl = self.kem(name) if kind is Kind.KEM else self.signature(name)
        return AlgorithmInfo(name=name, kind=kind, backend=impl.backend, sizes=impl.sizes)

    def list_algorithms(self) -> list[AlgorithmInfo]:
        """Every algorithm with its kind, backend name and sizes."""
        return [self.info(name) for name in self.names()]


def _ml_kem_512(use_liboqs: bool) -> KemBackend:
    if use_liboqs:
        try:
            return liboqs.LiboqsKem(ML_KEM_512)
        except BackendUnavailable as exc:
            logger.warning("liboqs found but unusable for %s, using pqcrypto: %s", ML_KEM_512, exc)
    return PqcryptoKem(ML_KEM_512)


def build_registry(*, use_liboqs: bool | None = None) -> Registry:
    """The service's standard selection (module docstring).

    ``use_liboqs=None`` detects the liboqs shared library (without importing ``oqs``);
    ``False`` never touches liboqs; ``True`` uses it when it loads, else falls back.
    """
    if use_liboqs is None:
        use_liboqs = liboqs.find_liboqs() is not None
    kems: list[KemBackend] = [_ml_kem_512(use_liboqs)]
    kems += [OpenSslKem(name) for name in OPENSSL_KEMS]
    kems.append(XWing())
    signatures: list[SignatureBackend] = [OpenSslSignature(n) for n in OPENSSL_SIGNATURES]
    signatures.append(Ed25519MlDsa65())
    registry = Registry(kems, signatures)
    if registry.names() != ALL_ALGORITHMS:
        # The published algorithm list is a contract; a refactor that drops one must not
        # start a worker that silently answers "unknown algorithm".
        msg = f"registry serves {registry.names()}, expected {ALL_ALGORITHMS}"
        raise RuntimeError(msg)
    for info in registry.list_algorithms():
        logger.info("algorithm %s (%s) served by %s", info.name, info.kind, info.backend)
    return registry
