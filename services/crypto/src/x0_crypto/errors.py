"""The crypto service's one exception tree, rooted in ``x0_common.errors``.

    x0_common.errors.X0Error
    └── CryptoError                  code            HTTP  meaning
        ├── UnknownAlgorithm         invalid_input   400   no algorithm by that name
        ├── InvalidInput             invalid_input   400   a key, ciphertext or signature of the
        │                                                  wrong length, or one the standard's
        │                                                  checks reject
        ├── BackendUnavailable       unavailable     503   the library behind an algorithm is
        │                                                  missing (not retried)
        ├── DecryptionFailed         invalid_input   400   authenticated decryption rejected
        │                                                  its input
        ├── EnvelopeError            internal        500   a sealed secret key did not open (never
        │                                                  leaves the keystore, which raises
        │                                                  SealedKeyCorrupt instead)
        └── ManagedKeyError
            ├── KeyNotFound          not_found       404   no key (or no version) by that name
            ├── KeyExists            conflict        409   create/restore onto an existing name,
            │                                              or a request id reused for another key
            ├── OperationNotAllowed  conflict        409   the key's settings forbid it
            │                                              (delete without deletion_allowed,
            │                                              export without exportable)
            ├── UnsupportedOperation invalid_input   400   the key's type cannot do it
            │                                              (encrypt with a signature key...)
            ├── VersionNotUsable     invalid_input   400   a version below min_decryption_version,
            │                                              or one a ciphertext names that does
            │                                              not exist
            ├── InvalidKeyConfig     invalid_input   400   a setting out of range
            ├── InvalidBackup        invalid_input   400   a backup that fails authentication or
            │                                              validation (or another tenant's)
            ├── KeyQuotaExceeded     quota_exceeded  403   the tenant has as many keys as
            │                                              X0_CRYPTO_MAX_KEYS_PER_TENANT
            └── SealedKeyCorrupt     internal        500   a stored secret key fails its integrity
                                                           check (wrong KEK, or a tampered row)

Codes are the shared ones of ``x0_common.errors``, so the gateway maps them to HTTP
statuses without knowing this package; ``details["reason"]`` tells the cases apart.
Managed-key errors are also the matching class of ``x0_common.errors`` (``KeyNotFound``
is a ``NotFound``...), so code written against the shared tree catches them.

KEM decapsulation never raises ``DecryptionFailed``: ML-KEM and X-Wing use implicit
rejection, so a tampered ciphertext yields an unrelated shared secret, not an error.
``DecryptionFailed`` is for the AEAD layer (managed keys). A failed signature check is
not an error either: ``verify`` returns ``False``.

Why 409 for "not allowed by the key's settings": the request is well formed and the
caller is authorised; the key's current state refuses it, and changing that state
(``deletion_allowed``, ``exportable``) makes the same request succeed. Vault answers
400 for both; 409 tells a client which knob to turn.

Messages and ``details`` may reach callers and logs, so they name fields, algorithms,
keys, versions and lengths only, never key bytes, ciphertexts or shared secrets.
"""

from __future__ import annotations

from typing import Any

from x0_common.errors import Conflict, InternalError, NotFound, QuotaExceeded, X0Error
from x0_common.errors import InvalidInput as CommonInvalidInput


class CryptoError(X0Error):
    """Base of every crypto-domain error; ``code`` is the stable machine-readable name."""


class UnknownAlgorithm(CryptoError, CommonInvalidInput):
    """The algorithm name is not one this service offers."""

    def __init__(self, algorithm: str, *, known: tuple[str, ...] = ()) -> None:
        # repr() keeps control characters in a caller-chosen name from forging log lines.
        super().__init__(
            f"unknown algorithm {algorithm!r}",
            details={"algorithm": algorithm, "known": list(known), "reason": "unknown_algorithm"},
        )
        self.algorithm = algorithm


class InvalidInput(CryptoError, CommonInvalidInput):
    """An input is malformed: wrong length, or rejected by the standard's input checks.

    ``field`` names the argument (``public_key``, ``secret_key``, ``ciphertext``,
    ``signature``); ``expected``/``actual`` are byte lengths when the length is wrong.
    The offending bytes themselves are never stored.
    """

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
    """The library that implements an algorithm is not installed or lacks it.

    Not an ``x0_common.errors.Unavailable`` on purpose: a missing library does not come
    back by retrying, so the responder answers at once.
    """

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


class DecryptionFailed(CryptoError, CommonInvalidInput):
    """Authenticated decryption rejected the ciphertext (tampered, or the wrong key)."""

    def __init__(self, message: str = "authenticated decryption failed") -> None:
        super().__init__(message, details={"reason": "decryption_failed"})


class EnvelopeError(CryptoError):
    """A sealed blob did not open: malformed, tampered, bound elsewhere or another KEK.

    Without message or detail: the caller (the keystore) knows which key and version
    it was opening and turns this into :class:`SealedKeyCorrupt`.
    """

    def __init__(self) -> None:
        super().__init__("")


class ManagedKeyError(CryptoError):
    """Base of managed-key errors; ``details["reason"]`` tells the cases apart."""

    def __init__(self, message: str, *, reason: str, **details: Any) -> None:
        super().__init__(message, details={"reason": reason, **details})
        self.reason = reason


class KeyNotFound(ManagedKeyError, NotFound):
    """No key by that name, or the key has no such version."""

    def __init__(self, name: str, version: int | None = None) -> None:
        if version is None:
            super().__init__(f"no key named {name!r}", reason="key_not_found", name=name)
        else:
            super().__init__(
                f"key {name!r} has no version {version}",
                reason="version_not_found",
                name=name,
                version=version,
            )


class KeyExists(ManagedKeyError, Conflict):
    """The name is taken, or the request id already created another key."""


class OperationNotAllowed(ManagedKeyError, Conflict):
    """The key's settings forbid the operation (see the module docstring for why 409)."""


class UnsupportedOperation(ManagedKeyError, CommonInvalidInput):
    """The key's type cannot perform the operation."""

    def __init__(self, name: str, key_type: str, operation: str) -> None:
        super().__init__(
            f"key {name!r} of type {key_type} does not support {operation}",
            reason="unsupported_operation",
            name=name,
            type=key_type,
            operation=operation,
        )


class VersionNotUsable(ManagedKeyError, CommonInvalidInput):
    """A version that may not be used (too old) or that a ciphertext names wrongly."""


class InvalidKeyConfig(ManagedKeyError, CommonInvalidInput):
    """A key setting out of range."""


class InvalidBackup(ManagedKeyError, CommonInvalidInput):
    """A backup blob that fails authentication or validation."""

    def __init__(self, why: str) -> None:
        super().__init__(f"invalid backup: {why}", reason="invalid_backup")


class SealedKeyCorrupt(ManagedKeyError, InternalError):
    """A stored secret key failed its integrity check: the server's problem, not the caller's."""

    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            "stored key material failed its integrity check",
            reason="sealed_key_corrupt",
            name=name,
            version=version,
        )


class KeyQuotaExceeded(ManagedKeyError, QuotaExceeded):
    """The tenant holds as many managed keys as its quota allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the tenant's quota of {limit} managed keys is used up",
            reason="quota_exceeded",
            quota="managed_keys",
            limit=limit,
        )
