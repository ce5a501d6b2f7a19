"""What the client needs to know beyond the contract rows: the routes' edge extras.

Every operation with an ``http`` binding is a client method; most need nothing but
their row (:mod:`x0_client.wire` builds the path, body and query from it). The few
routes that do more at the gateway's edge are described here as data, and both the
runtime and the method generator (:mod:`x0_client.codegen`) read them:

- ``query_names``: a request field travels under another query name (a node's
  history window is ``?from&to&step`` for ``start``, ``end``, ``step_seconds``);
- ``options``: query parameters that are not request fields (``wait`` on RAG writes);
- ``idempotency_field``: a request field that makes a retried call apply once, filled
  with the call's ``Idempotency-Key`` when the caller left it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from x0_common.contract import OPERATIONS, Crypto, Operation, Rag, Telemetry


@dataclass(frozen=True, slots=True)
class QueryOption:
    """A keyword argument of a method sent as a query parameter, not a request field."""

    name: str
    annotation: str  # as written in the generated method
    default: bool | int | str | None
    doc: str


@dataclass(frozen=True, slots=True)
class RouteExtras:
    """What a route takes beyond its row's request model."""

    query_names: Mapping[str, str] = field(default_factory=dict)
    options: tuple[QueryOption, ...] = ()
    idempotency_field: str | None = None

    def query_name(self, request_field: str) -> str:
        """The query parameter a request field travels as."""
        return self.query_names.get(request_field, request_field)


NONE: Final = RouteExtras()
_WAIT = QueryOption(
    "wait",
    "bool",
    False,
    "answer once a replica applied the write (200) rather than once Kafka holds it (202)",
)

EXTRAS: Final[Mapping[Operation, RouteExtras]] = {
    Rag.UPSERT: RouteExtras(options=(_WAIT,)),
    Rag.DELETE: RouteExtras(options=(_WAIT,)),
    Telemetry.NODE_HISTORY: RouteExtras(
        query_names={"start": "from", "end": "to", "step_seconds": "step"}
    ),
    # The worker creates a key once per request_id: a retried create cannot conflict.
    Crypto.KEY_CREATE: RouteExtras(idempotency_field="request_id"),
}

# Scopes of operations without side effects: sent again after a broken connection.
SIDE_EFFECT_FREE_SCOPES: Final = frozenset({"crypto", "keys:read", "rag:read", "telemetry:read"})
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Methods that carry an Idempotency-Key header.
MUTATING_METHODS: Final = frozenset({"POST", "PATCH", "DELETE"})

ROUTED: Final[tuple[Operation, ...]] = tuple(o for o in OPERATIONS if o.http is not None)
"""Every operation with an HTTP route: one client method each."""
BY_NAME: Final[Mapping[str, Operation]] = {o.name: o for o in ROUTED}


def extras_of(operation: Operation) -> RouteExtras:
    """The row's edge extras (none for a plain forwarding route)."""
    return EXTRAS.get(operation, NONE)


def is_idempotent(operation: Operation) -> bool:
    """True when sending the call twice does what sending it once does."""
    assert operation.http is not None
    return operation.http.method in IDEMPOTENT_METHODS or operation.scope in SIDE_EFFECT_FREE_SCOPES
