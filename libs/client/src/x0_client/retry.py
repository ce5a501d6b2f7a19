"""When a call is sent again, and after how long.

Retried: answers 429 and 503 (any method: the gateway answers them before a worker
acts, or the worker's failure passed nothing on), and a 409 that carries
``Retry-After`` (an ``Idempotency-Key`` whose first request is still running; a plain
conflict has no such header), for up to ``max_attempts`` sends in all; a connection
that could not be opened (nothing was sent); and other transport failures only for
idempotent requests (a read, or an operation with no side effect),
since the first send may have been applied. The wait is ``Retry-After`` when the
server sent one, else exponential backoff with full jitter (AWS Architecture Blog,
"Exponential Backoff And Jitter"): uniform in ``[0, min(max_delay, base_delay * 2**n))``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 503})
# A request with the same Idempotency-Key is still running (with Retry-After).
IN_PROGRESS_STATUS = 409


def retry_after_seconds(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent or bad."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    ``sleep``/``async_sleep`` and ``random`` are injectable so tests run without waiting.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0
    # A server asking for a longer wait than this is not waited for: the error is raised.
    max_retry_after: float = 60.0
    statuses: frozenset[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = "max_attempts must be at least 1"
            raise ValueError(msg)

    def backoff(self, attempt: int) -> float:
        """The full-jitter wait after the ``attempt``-th send (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * self.random()

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again, or None to return the answer as it is."""
        if attempt >= self.max_attempts:
            return None
        asked = retry_after_seconds(response)
        in_progress = response.status_code == IN_PROGRESS_STATUS and asked is not None
        if response.status_code not in self.statuses and not in_progress:
            return None
        if asked is None:
            return self.backoff(attempt)
        return asked if asked <= self.max_retry_after else None

    def after_error(
        self, attempt: int, error: httpx.TransportError, *, idempotent: bool
    ) -> float | None:
        """Seconds to wait before sending again after a transport failure, or None to raise."""
        if attempt >= self.max_attempts:
            return None
        never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
        if never_sent or idempotent:
            return self.backoff(attempt)
        return None


NO_RETRY = RetryPolicy(max_attempts=1)
"""Send once; every answer and failure is returned or raised as it comes."""
