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
    # The subclasses declared with a status, in order: what a problem maps to.
    _declared: ClassVar[list[type[ProblemError]]] = []

    def __init_subclass__(
        cls, *, status: int | None = None, codes: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        """``class NotFoundError(ProblemError, status=404, codes=("not_found",))``: the
        status and codes a class stands for, declared on its own line."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code, cls.codes = status, codes
            ProblemError._declared.append(cls)

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


class InvalidInputError(ProblemError, status=400, codes=("invalid_input", "unknown_type")):
    """400: well-formed request with wrong values (bad base64, wrong key length)."""


class UnauthorizedError(ProblemError, status=401, codes=("unauthenticated", "unauthorized")):
    """401: no credentials, or credentials the gateway does not accept."""


class ForbiddenError(ProblemError, status=403, codes=("forbidden", "quota_exceeded")):
    """403: the credentials lack the operation's scope."""


class NotFoundError(ProblemError, status=404, codes=("not_found",)):
    """404: the named key, collection, document or node does not exist."""


class ConflictError(ProblemError, status=409, codes=("conflict",)):
    """409: the request conflicts with current state (exists already, not exportable)."""


class TooLargeError(ProblemError, status=413, codes=("too_large",)):
    """413: a body or batch above the documented limit."""


class ValidationError(ProblemError, status=422, codes=("validation",)):
    """422: the request does not match the operation's schema (``details["errors"]``)."""


class RateLimitedError(ProblemError, status=429, codes=("rate_limited",)):
    """429: too many requests; retried by the client, raised once attempts run out."""


class InternalServerError(ProblemError, status=500, codes=("internal",)):
    """500: a bug on the server side (``trace_id`` finds it)."""


class UnavailableError(ProblemError, status=503, codes=("unavailable", "overloaded")):
    """503: a dependency failed in a way that may pass, or the gateway is overloaded."""


class DeadlineExceededError(ProblemError, status=504, codes=("deadline_exceeded",)):
    """504: no worker answered before the request's deadline."""


_BY_CODE = {code: cls for cls in ProblemError._declared for code in cls.codes}
_BY_STATUS = {cls.status_code: cls for cls in ProblemError._declared}


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
