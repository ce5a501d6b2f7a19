"""The one exception tree every x0 package roots its own errors in.

    X0Error                      code            HTTP status at the gateway
    ├── InvalidInput             invalid_input   400
    ├── Unauthenticated          unauthenticated 401  (no, or no valid, credentials)
    ├── Forbidden                forbidden       403  (the credentials lack the scope)
    │   └── QuotaExceeded        quota_exceeded  403  (the tenant's quota is used up)
    ├── NotFound                 not_found       404
    ├── Conflict                 conflict        409
    ├── TooLarge                 too_large       413
    ├── ValidationFailed         validation      422
    ├── RateLimited              rate_limited    429  (details.retry_after_seconds)
    ├── Unavailable              unavailable     503  (transient: the responder retries it)
    │   └── Overloaded           overloaded      503
    ├── DeadlineExceeded         deadline_exceeded 504
    ├── UnknownMessageType       unknown_type    400
    └── InternalError            internal        500

A handler raises one of these; the responder turns it into a typed error reply
``{code, message, details}``; the gateway turns that into ``application/problem+json``.
``message`` and ``details`` travel to the caller, so they must never hold key
material, shared secrets or tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar


class X0Error(Exception):
    """Base of every x0 error; ``code`` is the stable, machine-readable name."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidInput(X0Error):
    """Well-formed request whose values are wrong (bad base64, wrong key length...)."""

    code = "invalid_input"
    http_status = 400


class Unauthenticated(X0Error):
    """No credentials, or credentials that are malformed, unknown, expired or revoked."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(X0Error):
    """The caller is known but its scopes do not allow the operation."""

    code = "forbidden"
    http_status = 403


class QuotaExceeded(Forbidden):
    """The tenant has used up a quota; ``details`` names it and its limit."""

    code = "quota_exceeded"
    http_status = 403


class NotFound(X0Error):
    """The named thing (key, collection, document) does not exist."""

    code = "not_found"
    http_status = 404


class Conflict(X0Error):
    """The request conflicts with current state (exists already, deletion not allowed)."""

    code = "conflict"
    http_status = 409


class TooLarge(X0Error):
    """A body or batch above the documented limit."""

    code = "too_large"
    http_status = 413


class ValidationFailed(X0Error):
    """The payload does not match the message schema."""

    code = "validation"
    http_status = 422


class RateLimited(X0Error):
    """Too many requests from this caller; retry after ``details.retry_after_seconds``."""

    code = "rate_limited"
    http_status = 429


class Unavailable(X0Error):
    """A dependency failed in a way that may pass; the responder retries with backoff."""

    code = "unavailable"
    http_status = 503


class Overloaded(Unavailable):
    """Too many requests in flight; the caller should back off and retry."""

    code = "overloaded"
    http_status = 503


class DeadlineExceeded(X0Error):
    """No reply arrived before the request's deadline."""

    code = "deadline_exceeded"
    http_status = 504


class UnknownMessageType(X0Error):
    """No handler is registered for the message's ``x0-type``."""

    code = "unknown_type"
    http_status = 400


class InternalError(X0Error):
    """A bug: the handler failed in a way it did not declare."""

    code = "internal"
    http_status = 500


_BY_CODE: dict[str, type[X0Error]] = {
    cls.code: cls
    for cls in (
        X0Error,
        InvalidInput,
        Unauthenticated,
        Forbidden,
        QuotaExceeded,
        NotFound,
        Conflict,
        TooLarge,
        ValidationFailed,
        RateLimited,
        Unavailable,
        Overloaded,
        DeadlineExceeded,
        UnknownMessageType,
        InternalError,
    )
}


def error_for_code(code: str, message: str, details: dict[str, Any] | None = None) -> X0Error:
    """Rebuild the typed error a remote handler raised from its reply's ``code``."""
    cls = _BY_CODE.get(code, X0Error)
    error = cls(message, details=details)
    if cls is X0Error and code != X0Error.code:
        # A code this build does not know (a newer worker): keep it rather than lose it.
        error.details = {**error.details, "remote_code": code}
    return error
