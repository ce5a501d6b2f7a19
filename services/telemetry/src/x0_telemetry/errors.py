"""The telemetry service's one exception tree, rooted in ``x0_common.errors``.

    TelemetryError               code           raised when
    ├── InvalidInput             invalid_input  a history window that ends before it starts,
    │                                           or asks for too many points
    ├── NotFound                 not_found      no such node (or its state expired)
    └── Unavailable              unavailable    PostgreSQL or Redis failed (retried)

Each class also derives from the ``x0_common`` error with the same code, so the
responder maps it to a typed reply (and the gateway to an HTTP status) without a
translation table. Events the ingest refuses are not errors: they are dead-lettered
with a reason (:mod:`x0_telemetry.domain.events`). ``message`` and ``details`` reach
callers: they name fields and ids, never measured values.
"""

from __future__ import annotations

from x0_common import errors as common


class TelemetryError(common.X0Error):
    """Base of every telemetry error; ``code`` is the stable machine-readable name."""


class InvalidInput(TelemetryError, common.InvalidInput):
    """A request value is wrong (``details.field`` names it)."""


class NotFound(TelemetryError, common.NotFound):
    """The node (or what the request names) does not exist."""


class Unavailable(TelemetryError, common.Unavailable):
    """A store failed in a way that may pass; the responder retries it."""
