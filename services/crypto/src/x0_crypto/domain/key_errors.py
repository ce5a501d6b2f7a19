"""Errors of managed keys, a branch of the crypto domain's tree (:mod:`.errors`).

    x0_common.errors.X0Error
    └── CryptoError
        └── ManagedKeyError            code            HTTP  when
            ├── KeyNotFound            not_found       404   no key (or no version) by that name
            ├── KeyExists              conflict        409   create/restore onto an existing name,
            │                                                or a request id reused for another key
            ├── OperationNotAllowed    conflict        409   the key's settings forbid it
            │                                                (delete without deletion_allowed,
            │                                                export without exportable)
            ├── UnsupportedOperation   invalid_input   400   the key's type cannot do it
            │                                                (encrypt with a signature key...)
            ├── VersionNotUsable       invalid_input   400   a version below min_decryption_version,
            │                                                or one a ciphertext names that does
            │                                                not exist
            ├── InvalidKeyConfig       invalid_input   400   a setting out of range
            ├── InvalidBackup          invalid_input   400   a backup that fails authentication or
            │                                                validation
            └── SealedKeyCorrupt       internal        500   a stored secret key fails its integrity
                                                             check (wrong KEK, or a tampered row)

Why 409 for "not allowed by the key's settings": the request is well formed and the
caller is authorised; the key's current state refuses it, and changing that state
(``deletion_allowed``, ``exportable``) makes the same request succeed. Vault answers
400 for both; 409 tells a client which knob to turn.

Each class is also the matching class of ``x0_common.errors`` (``KeyNotFound`` is a
``NotFound``...), so code written against the shared tree catches them.

Messages and details name keys, versions and settings, never key bytes.
"""

from __future__ import annotations

from typing import Any

from x0_common.errors import Conflict, InternalError, InvalidInput, NotFound
from x0_crypto.domain.errors import CryptoError


class ManagedKeyError(CryptoError):
    """Base of managed-key errors; ``details["reason"]`` tells the cases apart."""

    def __init__(self, message: str, *, reason: str, **details: Any) -> None:
        super().__init__(message, details={"reason": reason, **details})
        self.reason = reason


class KeyNotFound(ManagedKeyError, NotFound):
    """No key by that name, or the key has no such version."""

    code = "not_found"
    http_status = 404

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

    code = "conflict"
    http_status = 409


class OperationNotAllowed(ManagedKeyError, Conflict):
    """The key's settings forbid the operation (see the module docstring for why 409)."""

    code = "conflict"
    http_status = 409


class UnsupportedOperation(ManagedKeyError, InvalidInput):
    """The key's type cannot perform the operation."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, name: str, key_type: str, operation: str) -> None:
        super().__init__(
            f"key {name!r} of type {key_type} does not support {operation}",
            reason="unsupported_operation",
            name=name,
            type=key_type,
            operation=operation,
        )


class VersionNotUsable(ManagedKeyError, InvalidInput):
    """A version that may not be used (too old) or that a ciphertext names wrongly."""

    code = "invalid_input"
    http_status = 400


class InvalidKeyConfig(ManagedKeyError, InvalidInput):
    """A key setting out of range."""

    code = "invalid_input"
    http_status = 400


class InvalidBackup(ManagedKeyError, InvalidInput):
    """A backup blob that fails authentication or validation."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, why: str) -> None:
        super().__init__(f"invalid backup: {why}", reason="invalid_backup")


class SealedKeyCorrupt(ManagedKeyError, InternalError):
    """A stored secret key failed its integrity check: the server's problem, not the caller's."""

    code = "internal"
    http_status = 500

    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            "stored key material failed its integrity check",
            reason="sealed_key_corrupt",
            name=name,
            version=version,
        )
