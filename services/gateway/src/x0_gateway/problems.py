"""Errors as ``application/problem+json`` (RFC 9457), the one error shape of the API."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from x0_common.errors import (
    DeadlineExceeded,
    Forbidden,
    Unauthenticated,
    Unavailable,
    X0Error,
)
from x0_common.events.binary import BASE64_ERROR
from x0_common.tracing import current_trace_ids
from x0_gateway.auth.caller import MissingCredentials

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_JSON


# RFC 6750 section 3: the challenge of a 401 (and of a 403 for a missing scope).
REALM = 'Bearer realm="x0"'


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    details: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    """Build a problem document; ``code`` is the stable machine-readable error name."""
    body: dict[str, Any] = {
        "type": f"urn:x0:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "instance": request.url.path,
    }
    if details:
        body["details"] = details
    ids = current_trace_ids()
    if ids:
        body["trace_id"] = ids[0]
    # For the audit record of this answer (x0_gateway.audit.middleware).
    request.state.problem_code = code
    return ProblemResponse(body, status_code=status, headers=headers)


def challenge(error: X0Error) -> dict[str, str] | None:
    """The ``WWW-Authenticate`` header of a 401, or of a 403 for a missing scope.

    No credentials get the bare challenge; bad ones ``error="invalid_token"``.
    """
    if isinstance(error, MissingCredentials):
        return {"WWW-Authenticate": REALM}
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": f'{REALM}, error="invalid_token"'}
    scope = error.details.get("required_scope")
    if isinstance(error, Forbidden) and isinstance(scope, str):
        return {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'}
    return None


def retry_after(error: X0Error) -> dict[str, str] | None:
    """``Retry-After`` of a 429, 503 or 504: ``details.retry_after_seconds``, else 1 s for
    a 503 or a 504 (while a worker restarts, its requests end in 504: the caller is told
    when to come back, as for a 503; a 504's outcome is still unknown)."""
    seconds = error.details.get("retry_after_seconds")
    if seconds is None and isinstance(error, Unavailable | DeadlineExceeded):
        seconds = 1
    return None if seconds is None else {"Retry-After": str(max(1, int(seconds)))}


def problem_of(request: Request, error: X0Error) -> ProblemResponse:
    """The problem document of an x0 error, with the headers its status calls for."""
    headers = {**(challenge(error) or {}), **(retry_after(error) or {})}
    return problem(
        request,
        error.http_status,
        error.code,
        error.message,
        error.details,
        headers=headers or None,
    )


async def _x0_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, X0Error)
    return problem_of(request, error)


async def _validation_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RequestValidationError)
    # Inputs are left out: a rejected body may hold key material.
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    details = {"errors": errors}
    # A batch with too many items, or a document text over its limit, is "too large".
    if any(
        e["type"] == "too_long" or (e["type"] == "string_too_long" and e["loc"][-1] == "text")
        for e in errors
    ):
        return problem(request, 413, "too_large", "the body is larger than allowed", details)
    if any(e["type"] == BASE64_ERROR for e in errors):
        return problem(request, 400, "invalid_input", "a binary field is not base64url", details)
    return problem(request, 422, "validation", "the request is not valid", details)


async def _http_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Starlette names the methods of the first route that matched the path only.
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(request, error.status_code, code, str(error.detail), headers=headers or None)


_HTTP_CODES = {
    # FastAPI's answer to a body it cannot read as JSON text (e.g. not UTF-8).
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    431: "headers_too_large",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (RFC 9110's ``Allow`` of a 405):
    each one the router would fully match here."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _unexpected_error(request: Request, error: Exception) -> ProblemResponse:
    logger.error("unhandled error", exc_info=error)
    return problem(request, 500, "internal", "internal error")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the API can raise as problem+json."""
    app.add_exception_handler(X0Error, _x0_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
