"""The two interfaces every algorithm implementation satisfies.

A backend may assume its inputs already have the lengths its ``sizes`` advertise, and
that a signing context is at most 255 bytes (FIPS 204):
``x0_crypto.domain.checked`` enforces them in one place before any backend runs. A
backend still maps its library's own rejections (an ML-KEM public key failing the
FIPS 203 modulus check, a missing algorithm) onto ``x0_crypto.errors``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from x0_crypto.domain.algorithms import KemSizes, SignatureSizes


class Backend(Protocol):
    """What every backend has: its algorithm, its library, and fresh key pairs."""

    @property
    def algorithm(self) -> str:
        """Algorithm name, e.g. ``ML-KEM-768`` or ``ML-DSA-65``."""
        ...

    @property
    def backend(self) -> str:
        """Which library serves it: ``openssl``, ``pqcrypto`` or ``liboqs``."""
        ...

    def keypair(self) -> tuple[bytes, bytes]:
        """A fresh ``(public_key, secret_key)``."""
        ...


@runtime_checkable
class KemBackend(Backend, Protocol):
    """A key-encapsulation mechanism."""

    @property
    def sizes(self) -> KemSizes:
        """Lengths of the bytes this backend takes and returns."""
        ...

    def encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        """``(ciphertext, shared_secret)`` for the holder of ``public_key``."""
        ...

    def decapsulate(self, secret_key: bytes, ciphertext: bytes) -> bytes:
        """The shared secret; a tampered ciphertext gives an unrelated one (no error)."""
        ...


@runtime_checkable
class SignatureBackend(Backend, Protocol):
    """A digital-signature scheme."""

    @property
    def sizes(self) -> SignatureSizes:
        """Lengths of the bytes this backend takes and returns."""
        ...

    def sign(self, secret_key: bytes, message: bytes, *, context: bytes = b"") -> bytes:
        """A signature over ``message`` under the FIPS 204 ``context`` string.

        A scheme or library that cannot honour a non-empty context raises
        :class:`~x0_crypto.errors.InvalidInput` rather than ignore it: a context
        silently dropped would give signatures that verify in every domain.
        """
        ...

    def verify(
        self, public_key: bytes, message: bytes, signature: bytes, *, context: bytes = b""
    ) -> bool:
        """Whether ``signature`` is valid for ``message`` under ``public_key`` and ``context``."""
        ...
