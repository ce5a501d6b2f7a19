"""The one exception tree of the client.

    X0ClientError                     anything this package raises about a call
    ├── TransportError                no HTTP answer (connection refused, reset, ...)
    │   └── RequestTimeoutError       no answer within the client's timeout
    ├── UnexpectedResponseError       a success answer that is not the result model
    └── ProblemError                  an ``application/problem+json`` answer (RFC 9457)
        ├── InvalidInputError         400 invalid_input, unknown_type
        ├── UnauthorizedError         401 unauthenticated
        ├── ForbiddenError            403 forbidden, quota_exceeded
        ├── NotFoundError             404
        ├── ConflictError             409
        ├── TooLargeError             413
        ├── ValidationError           422 validation (the request does not fit the schema)
        ├── RateLimitedError          429 (``retry_after``)
        ├── InternalServerError       500 internal
        ├── UnavailableError          503 unavailable, overloaded (``retry_after``)
        └── DeadlineExceededError     504 deadline_exceeded

A problem maps to its class by ``code`` first (the gateway's stable error names),
then by HTTP status; anything else is a plain :class:`ProblemError`. A request that
does not fit its model locally raises pydantic's own ``ValidationError`` before
anything is sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

PROBLEM_JSON = "application/problem+json"


class X0ClientError(Exception):
    """Base of every error the client raises about a call."""


class TransportError(X0ClientError):
    """The request got no HTTP answer; ``__cause__`` is httpx's error."""


class RequestTimeoutError(TransportError):
    """No answer within the client's timeout (``httpx.Timeout``)."""


class UnexpectedResponseError(X0ClientError):
    """A 2xx answer whose body is not the operation's result model."""

    def __init__(self, message: str, *, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ProblemError(X0ClientError):
    """The gateway answered an error as ``application/problem+json``.

    ``code`` is the stable machine-readable name (``not_found``), ``title`` the human
    message, ``details`` the structured context, ``trace_id`` the trace to look up.
    """

    status_code: ClassVar[int | None] = None
    codes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        details: dict[str, Any] | None = None,
        trace_id: str | None = None,
        *,
        instance: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {title}")
        self.status = status
        self.code = code
        self.title = title
        self.details: dict[str, Any] = details or {}
        self.trace_id = trace_id
        self.instance = instance
        # Seconds the server asked the caller to wait (``Retry-After``), if it said.
        self.retry_after = retry_after


class InvalidInputError(ProblemError):
    """400: well-formed request with wrong values (bad base64, wrong key length)."""

    status_code = 400
    codes = ("invalid_input", "unknown_type")


class UnauthorizedError(ProblemError):
    """401: no credentials, or credentials the gateway does not accept."""

    status_code = 401
    codes = ("unauthenticated", "unauthorized")


class ForbiddenError(ProblemError):
    """403: the credentials lack the operation's scope."""

    status_code = 403
    codes = ("forbidden", "quota_exceeded")


class NotFoundError(ProblemError):
    """404: the named key, collection, document or node does not exist."""

    status_code = 404
    codes = ("not_found",)


class ConflictError(ProblemError):
    """409: the request conflicts with current state (exists already, not exportable)."""

    status_code = 409
    codes = ("conflict",)


class TooLargeError(ProblemError):
    """413: a body or batch above the documented limit."""

    status_code = 413
    codes = ("too_large",)


class ValidationError(ProblemError):
    """422: the request does not match the operation's schema (``details["errors"]``)."""

    status_code = 422
    codes = ("validation",)


class RateLimitedError(ProblemError):
    """429: too many requests; retried by the client, raised once attempts run out."""

    status_code = 429
    codes = ("rate_limited",)


class InternalServerError(ProblemError):
    """500: a bug on the server side (``trace_id`` finds it)."""

    status_code = 500
    codes = ("internal",)


class UnavailableError(ProblemError):
    """503: a dependency failed in a way that may pass, or the gateway is overloaded."""

    status_code = 503
    codes = ("unavailable", "overloaded")


class DeadlineExceededError(ProblemError):
    """504: no worker answered before the request's deadline."""

    status_code = 504
    codes = ("deadline_exceeded",)


_CLASSES: tuple[type[ProblemError], ...] = (
    InvalidInputError,
    UnauthorizedError,
    ForbiddenError,
    NotFoundError,
    ConflictError,
    TooLargeError,
    ValidationError,
    RateLimitedError,
    InternalServerError,
    UnavailableError,
    DeadlineExceededError,
)
_BY_CODE = {code: cls for cls in _CLASSES for code in cls.codes}
_BY_STATUS = {cls.status_code: cls for cls in _CLASSES}


def problem_class(status: int, code: str) -> type[ProblemError]:
    """The class of a problem: by ``code``, else by ``status``, else :class:`ProblemError`."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status) or ProblemError


def problem_from_response(
    response: httpx.Response, *, retry_after: float | None = None
) -> ProblemError:
    """The typed error of a non-2xx answer, problem+json or not (a proxy's HTML 502)."""
    status = response.status_code
    document: dict[str, Any] = {}
    if response.headers.get("content-type", "").startswith(
        ("application/problem+json", "application/json")
    ):
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            document = parsed
    code = str(document.get("code") or f"http_{status}")
    title = str(document.get("title") or response.reason_phrase or "error")
    details = document.get("details")
    trace_id = document.get("trace_id")
    return problem_class(status, code)(
        status,
        code,
        title,
        details if isinstance(details, dict) else None,
        str(trace_id) if trace_id else None,
        instance=document.get("instance"),
        retry_after=retry_after,
    )


def transport_error(error: httpx.TransportError) -> TransportError:
    """The client's error for httpx's: :class:`RequestTimeoutError` for a timeout."""
    kind = RequestTimeoutError if isinstance(error, httpx.TimeoutException) else TransportError
    return kind(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
