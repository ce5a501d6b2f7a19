"""ML-KEM and ML-DSA through liboqs (``liboqs-python``), only where liboqs is installed.

Importing ``oqs`` without the liboqs shared library makes liboqs-python try to
``git clone`` and build liboqs, then ``SystemExit``. So :func:`find_liboqs` looks for
the library with ctypes, in the places liboqs-python itself searches, and ``oqs`` is
imported only after it has answered yes (:func:`load_oqs`); nothing else here imports it.

Secret keys are liboqs's native forms: the expanded FIPS 203 decapsulation key for
ML-KEM (the same bytes pqcrypto uses) and the expanded FIPS 204 signing key for
ML-DSA (2560/4032/4896 bytes). Neither is the seed form the OpenSSL backend stores,
which is why the registry lets liboqs serve only ML-KEM-512, where pqcrypto's keys are
already expanded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from x0_crypto.domain.algorithms import KemSizes, SignatureSizes
from x0_crypto.domain.mlkem_checks import check_decapsulation_key, check_encapsulation_key
from x0_crypto.errors import BackendUnavailable, CryptoError, InvalidInput

BACKEND = "liboqs"
logger = logging.getLogger(__name__)


def _candidate_paths() -> list[str]:
    """Where liboqs-python's loader looks, in its order (``oqs.oqs._load_liboqs``)."""
    found = [lib for name in ("oqs", "liboqs") if (lib := ctypes.util.find_library(name))]
    if "OQS_INSTALL_PATH" in os.environ:
        root = Path(os.environ["OQS_INSTALL_PATH"])
    else:
        root = Path.home() / "_oqs"
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    return found + [str(root / sub / f"liboqs{suffix}") for sub in ("lib", "lib64")]


@functools.cache
def find_liboqs() -> str | None:
    """Path (or soname) of a loadable liboqs shared library, or None. Never imports ``oqs``.

    Cached: the answer cannot change while the process runs without a restart.
    """
    for candidate in _candidate_paths():
        try:
            ctypes.CDLL(candidate)
        except OSError:
            continue
        return candidate
    return None


def load_oqs() -> ModuleType:
    """The ``oqs`` module, imported only once :func:`find_liboqs` has found the library."""
    if find_liboqs() is None:
        raise BackendUnavailable(BACKEND, "liboqs shared library not found")
    try:
        # liboqs-python warns when liboqs's version differs from its own; that is worth a
        # log line, not a crash (tests turn warnings into errors).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import oqs  # noqa: PLC0415 - the import must wait for find_liboqs(), see above
    except (ImportError, RuntimeError, SystemExit) as exc:
        raise BackendUnavailable(BACKEND, f"liboqs-python failed to load: {exc}") from None
    for warning in caught:
        logger.warning("liboqs-python: %s", warning.message)
    module: ModuleType = oqs  # liboqs-python ships no type information
    return module


def _failed(algorithm: str, operation: str) -> CryptoError:
    # liboqs reports failures only as "Can not ..." RuntimeErrors; inputs were checked.
    return CryptoError(f"{algorithm} {operation} failed in liboqs", details={"backend": BACKEND})


@contextmanager
def _enabled(oqs: Any, algorithm: str) -> Iterator[None]:
    """A mechanism liboqs does not know, or was built without, is an unavailable backend."""
    try:
        yield
    except oqs.MechanismNotSupportedError:  # also covers "not enabled"
        raise BackendUnavailable(
            BACKEND, "not enabled in this liboqs build", algorithm=algorithm
        ) from None


@contextmanager
def _failing_as(algorithm: str, operation: str) -> Iterator[None]:
    """liboqs reports any failure as a bare ``RuntimeError``: name the operation."""
    try:
        yield
    except RuntimeError:
        raise _failed(algorithm, operation) from None


def _new_keypair(mechanism: Any, algorithm: str) -> tuple[bytes, bytes]:
    """A key pair from a liboqs ``KeyEncapsulation`` or ``Signature`` (freed after)."""
    with mechanism as keys, _failing_as(algorithm, "key generation"):
        public_key = keys.generate_keypair()
        return bytes(public_key), bytes(keys.export_secret_key())


class LiboqsKem:
    """A liboqs KEM; ML-KEM keys get the FIPS 203 input checks before liboqs sees them."""

    def __init__(self, algorithm: str) -> None:
        self._oqs: Any = load_oqs()
        self.algorithm = algorithm
        self.backend = BACKEND
        self._is_mlkem = algorithm.startswith("ML-KEM-")
        with _enabled(self._oqs, algorithm), self._oqs.KeyEncapsulation(algorithm) as kem:
            self.sizes = KemSizes(
                public_key=int(kem.length_public_key),
                secret_key=int(kem.length_secret_key),
                ciphertext=int(kem.length_ciphertext),
                shared_secret=int(kem.length_shared_secret),
            )

    def keypair(self) -> tuple[bytes, bytes]:
        return _new_keypair(self._oqs.KeyEncapsulation(self.algorithm), self.algorithm)

    def encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        if self._is_mlkem:
            check_encapsulation_key(self.algorithm, public_key)
        with (
            self._oqs.KeyEncapsulation(self.algorithm) as kem,
            _failing_as(self.algorithm, "encapsulation"),
        ):
            ciphertext, shared_secret = kem.encap_secret(public_key)
        return bytes(ciphertext), bytes(shared_secret)

    def decapsulate(self, secret_key: bytes, ciphertext: bytes) -> bytes:
        if self._is_mlkem:
            check_decapsulation_key(self.algorithm, secret_key)
        # The context manager's free() wipes liboqs's copy of the secret key.
        with (
            self._oqs.KeyEncapsulation(self.algorithm, secret_key) as kem,
            _failing_as(self.algorithm, "decapsulation"),
        ):
            return bytes(kem.decap_secret(ciphertext))


class LiboqsSignature:
    """A liboqs signature scheme in pure mode, with the FIPS 204 context string.

    ``*_with_ctx_str`` serve every call, an empty context included (liboqs passes it as
    none); a non-empty one is refused for schemes liboqs cannot give one to.
    """

    def __init__(self, algorithm: str) -> None:
        self._oqs: Any = load_oqs()
        self.algorithm = algorithm
        self.backend = BACKEND
        with _enabled(self._oqs, algorithm), self._oqs.Signature(algorithm) as sig:
            self.sizes = SignatureSizes(
                public_key=int(sig.length_public_key),
                secret_key=int(sig.length_secret_key),
                signature=int(sig.length_signature),
            )

    def keypair(self) -> tuple[bytes, bytes]:
        return _new_keypair(self._oqs.Signature(self.algorithm), self.algorithm)

    def sign(self, secret_key: bytes, message: bytes, *, context: bytes = b"") -> bytes:
        with self._oqs.Signature(self.algorithm, secret_key) as sig:
            self._require_context_support(sig, context)
            with _failing_as(self.algorithm, "signing"):
                return bytes(sig.sign_with_ctx_str(message, context))

    def verify(
        self, public_key: bytes, message: bytes, signature: bytes, *, context: bytes = b""
    ) -> bool:
        with self._oqs.Signature(self.algorithm) as sig:
            self._require_context_support(sig, context)
            return bool(sig.verify_with_ctx_str(message, signature, context, public_key))

    def _require_context_support(self, sig: Any, context: bytes) -> None:
        # liboqs-python would raise a bare RuntimeError, indistinguishable from a
        # failed signing; the caller's mistake deserves a typed error naming the field.
        if context and not sig.sig_with_ctx_support:
            raise InvalidInput(
                self.algorithm, "context", reason="not supported by liboqs for this algorithm"
            )
