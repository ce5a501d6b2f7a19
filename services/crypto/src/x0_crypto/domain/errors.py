"""The crypto domain's one exception tree.

    x0_common.errors.X0Error
    └── CryptoError              code            HTTP  meaning
        ├── UnknownAlgorithm     invalid_input   400   no algorithm by that name
        ├── InvalidInput         invalid_input   400   a key, ciphertext or signature of the
        │                                              wrong length, or one the standard's
        │                                              checks reject
        ├── BackendUnavailable   unavailable     503   the library behind an algorithm is missing
        └── DecryptionFailed     invalid_input   400   authenticated decryption rejected its input

Codes are the shared ones of ``x0_common.errors``, so the gateway maps them to HTTP
statuses without knowing this package; ``details["reason"]`` tells the cases apart.

KEM decapsulation never raises ``DecryptionFailed``: ML-KEM and X-Wing use implicit
rejection, so a tampered ciphertext yields an unrelated shared secret, not an error.
``DecryptionFailed`` is for the AEAD layer (managed keys). A failed signature check is
not an error either: ``verify`` returns ``False``.

Messages and ``details`` may reach callers and logs, so they name fields, algorithms
and lengths only, never key bytes, ciphertexts or shared secrets.
"""

from __future__ import annotations

from typing import Any

from x0_common.errors import X0Error


class CryptoError(X0Error):
    """Base of every crypto-domain error; ``code`` is the stable machine-readable name."""


class UnknownAlgorithm(CryptoError):
    """The algorithm name is not one this service offers."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, algorithm: str, *, known: tuple[str, ...] = ()) -> None:
        # repr() keeps control characters in a caller-chosen name from forging log lines.
        super().__init__(
            f"unknown algorithm {algorithm!r}",
            details={"algorithm": algorithm, "known": list(known), "reason": "unknown_algorithm"},
        )
        self.algorithm = algorithm


class InvalidInput(CryptoError):
    """An input is malformed: wrong length, or rejected by the standard's input checks.

    ``field`` names the argument (``public_key``, ``secret_key``, ``ciphertext``,
    ``signature``); ``expected``/``actual`` are byte lengths when the length is wrong.
    The offending bytes themselves are never stored.
    """

    code = "invalid_input"
    http_status = 400

    def __init__(
        self,
        algorithm: str,
        field: str,
        *,
        expected: int | None = None,
        actual: int | None = None,
        reason: str | None = None,
    ) -> None:
        if reason is None:
            reason = f"must be {expected} bytes, got {actual}"
        details: dict[str, Any] = {"algorithm": algorithm, "field": field, "reason": reason}
        if expected is not None:
            details |= {"expected": expected, "actual": actual}
        super().__init__(f"{algorithm} {field}: {reason}", details=details)
        self.algorithm = algorithm
        self.field = field
        self.expected = expected
        self.actual = actual
        self.reason = reason


class BackendUnavailable(CryptoError):
    """The library that implements an algorithm is not installed or lacks it."""

    code = "unavailable"
    http_status = 503

    def __init__(self, backend: str, reason: str, *, algorithm: str | None = None) -> None:
        subject = f"{algorithm} via {backend}" if algorithm else backend
        super().__init__(
            f"{subject} unavailable: {reason}",
            details={"backend": backend, "algorithm": algorithm, "reason": reason},
        )
        self.backend = backend
        self.algorithm = algorithm


class DecryptionFailed(CryptoError):
    """Authenticated decryption rejected the ciphertext (tampered, or the wrong key)."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, message: str = "authenticated decryption failed") -> None:
        super().__init__(message, details={"reason": "decryption_failed"})
