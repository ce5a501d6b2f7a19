"""The one place where input lengths are checked, in front of every backend.

The registry hands out only these wrappers. Checking here rather than in each backend
keeps the rule uniform (same error, same fields, whatever library serves the
algorithm) and matters for safety: liboqs-python silently zero-pads a short key or
ciphertext to the expected size instead of rejecting it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from x0_common.events.crypto.signing import MAX_CONTEXT_BYTES
from x0_crypto.domain.algorithms import KemSizes, SignatureSizes
from x0_crypto.domain.backends.base import Backend, KemBackend, SignatureBackend
from x0_crypto.errors import InvalidInput


def require_length(algorithm: str, field: str, value: bytes, expected: int) -> None:
    """Raise :class:`InvalidInput` unless ``value`` is ``expected`` bytes long.

    The error records the field and both lengths; never the value.
    """
    if len(value) != expected:
        raise InvalidInput(algorithm, field, expected=expected, actual=len(value))


def require_context(algorithm: str, context: bytes) -> None:
    """Raise :class:`InvalidInput` for a context longer than FIPS 204 allows (255 bytes).

    The message models refuse one already; this keeps in-process callers to the same
    rule, with the same error whatever library would have been asked.
    """
    if len(context) > MAX_CONTEXT_BYTES:
        raise InvalidInput(
            algorithm,
            "context",
            reason=f"must be at most {MAX_CONTEXT_BYTES} bytes, got {len(context)}",
        )


B = TypeVar("B", bound=Backend)


class _Checked(Generic[B]):
    """What both wrappers pass straight through to the backend they wrap."""

    def __init__(self, inner: B) -> None:
        self.inner: B = inner

    @property
    def algorithm(self) -> str:
        return self.inner.algorithm

    @property
    def backend(self) -> str:
        return self.inner.backend

    def keypair(self) -> tuple[bytes, bytes]:
        """A fresh ``(public_key, secret_key)``."""
        return self.inner.keypair()


class CheckedKem(_Checked[KemBackend]):
    """A :class:`KemBackend` whose inputs are length-checked before the backend runs."""

    @property
    def sizes(self) -> KemSizes:
        return self.inner.sizes

    def encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        """``(ciphertext, shared_secret)``; :class:`InvalidInput` for a malformed key."""
        require_length(self.algorithm, "public_key", public_key, self.sizes.public_key)
        return self.inner.encapsulate(public_key)

    def decapsulate(self, secret_key: bytes, ciphertext: bytes) -> bytes:
        """The shared secret (implicit rejection: a tampered ciphertext is no error)."""
        require_length(self.algorithm, "secret_key", secret_key, self.sizes.secret_key)
        require_length(self.algorithm, "ciphertext", ciphertext, self.sizes.ciphertext)
        return self.inner.decapsulate(secret_key, ciphertext)


class CheckedSignature(_Checked[SignatureBackend]):
    """A :class:`SignatureBackend` whose inputs are length-checked first."""

    @property
    def sizes(self) -> SignatureSizes:
        return self.inner.sizes

    def sign(self, secret_key: bytes, message: bytes, *, context: bytes = b"") -> bytes:
        """A signature under ``context``; :class:`InvalidInput` for a malformed key or context."""
        require_length(self.algorithm, "secret_key", secret_key, self.sizes.secret_key)
        require_context(self.algorithm, context)
        return self.inner.sign(secret_key, message, context=context)

    def verify(
        self, public_key: bytes, message: bytes, signature: bytes, *, context: bytes = b""
    ) -> bool:
        """Whether the signature is valid under ``context``.

        A wrong-length *public key* is the caller's mistake and raises; a wrong-length
        *signature* is just an invalid signature, but it raises too, so that a caller
        who mixed up algorithms learns why rather than seeing a silent ``False``. So
        does a context over 255 bytes, which no signature can have been made under.
        """
        require_length(self.algorithm, "public_key", public_key, self.sizes.public_key)
        require_length(self.algorithm, "signature", signature, self.sizes.signature)
        require_context(self.algorithm, context)
        return self.inner.verify(public_key, message, signature, context=context)
