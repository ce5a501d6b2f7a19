"""What every command shares: the connection options and the exit codes by error class.

Exit codes (the same for every command):

====  =====================================================================
0     success
1     any other failure (a signature that does not verify, ingest failures)
2     usage: unknown command or option, missing argument
3     not found (404)
4     conflict (409)
5     invalid input, validation or too large (400, 422, 413; also refused locally)
6     unauthorized or forbidden (401, 403)
7     unavailable, timed out, rate limited, or no connection (503, 504, 429)
====  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import httpx
import pydantic
import typer

from x0_client.async_client import AsyncClient
from x0_client.client import Client
from x0_client.errors import (
    ConflictError,
    DeadlineExceededError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ProblemError,
    RateLimitedError,
    TooLargeError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from x0_client.settings import ClientSettings

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 3),
    (ConflictError, 4),
    (InvalidInputError, 5),
    (ValidationError, 5),
    (TooLargeError, 5),
    (pydantic.ValidationError, 5),
    (UnauthorizedError, 6),
    (ForbiddenError, 6),
    (UnavailableError, 7),
    (DeadlineExceededError, 7),
    (RateLimitedError, 7),
    (TransportError, 7),
)


def exit_code(error: Exception) -> int:
    """The documented exit code of an error."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return EXIT_FAILURE


def describe(error: Exception) -> str:
    """One line (or a few) for stderr; never the request's values."""
    if isinstance(error, ProblemError):
        line = f"error: {error.status} {error.code}: {error.title}"
        for item in error.details.get("errors", []) if isinstance(error.details, dict) else []:
            where = ".".join(str(part) for part in item.get("loc", []))
            line += f"\n  {where}: {item.get('msg')}"
        if error.trace_id:
            line += f"\n  trace_id: {error.trace_id}"
        return line
    if isinstance(error, pydantic.ValidationError):
        lines = [f"error: invalid input ({error.error_count()} errors)"]
        lines += [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return "\n".join(lines)
    return f"error: {error}"


class _ClientOptions(TypedDict):
    """What the sync and the async client are both built with."""

    api_key: str | None
    timeout: float | None
    settings: ClientSettings


@dataclass
class State:
    """The root command's options, and a transport for tests (``x0_client.testing``)."""

    url: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None

    def _options(self) -> _ClientOptions:
        return _ClientOptions(api_key=self.api_key, timeout=self.timeout, settings=ClientSettings())

    def client(self) -> Client:
        """A client with these options (``X0_*`` variables fill the rest)."""
        return Client(self.url, transport=self.transport, **self._options())

    def async_client(self) -> AsyncClient:
        """The async client with the same options."""
        return AsyncClient(self.url, transport=self.async_transport, **self._options())


def state(context: typer.Context) -> State:
    """The root command's state."""
    found = context.find_object(State)
    return found if found is not None else context.ensure_object(State)
