"""The outcome record of every audited or refused request, once it is answered.

A pure ASGI middleware inside the metrics and tracing layers (the trace id is the
request's) and outside the exception handlers (it sees the status they answered).
It writes, after the response is sent:

- the outcome of a request that wrote an attempt record (same ``request_id``);
- the one record of a request to an audited route that ended before its attempt (an
  invalid body, an idempotent replay);
- the one record of every 401, 403 and 429, on any route, and of every request a
  gateway limit refused before it reached its route: a body over the size limit
  (413) or a request past the concurrency limit (503 ``overloaded``), routed or not
  (``operation="unrouted"`` when no route matches): ``outcome="denied"``. The
  limits answer these themselves and say so in ``scope["state"]`` (:data:`CODE_KEY`),
  which is why this middleware sits outside them. Records of overload refusals
  waiting for Kafka are bounded (``max_pending_refusals``): past it they are counted
  as dropped, so an overload does not become a flood of records.

An outcome that cannot be written is logged and counted
(``x0_audit_records_total{result="failed"}``), never raised: the operation is done
by then, and its attempt record already says it was about to run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from x0_common.errors import Unavailable
from x0_common.events.audit import Outcome, ResourceType
from x0_common.principal import Principal
from x0_gateway.asgi import HttpMiddleware, ResponseWatch
from x0_gateway.audit.policy import path_resource
from x0_gateway.audit.trail import STATE_KEY, operation_id
from x0_gateway.audit.writer import AuditContext, AuditWriter, client_of

logger = logging.getLogger(__name__)

DENIED = frozenset({401, 403, 429})
# request.state key of the problem code of an error answer (x0_gateway.problems, and
# the limits that answer before the app: x0_gateway.body_limit, limits.concurrency).
CODE_KEY = "problem_code"
# Refused by a limit of the gateway: whatever the route, a denial.
TOO_LARGE = "too_large"
OVERLOADED = "overloaded"
# The operation of a refusal whose path no route matches.
UNROUTED = "unrouted"


def denied(status: int, code: object) -> bool:
    """401, 403, 429; a body over the size limit (413); a request past the
    concurrency limit (503 ``overloaded``)."""
    return status in DENIED or status == 413 or (status == 503 and code == OVERLOADED)


def outcome_of(status: int, code: object = None) -> Outcome:
    """succeeded (< 400), denied (:func:`denied`) or failed."""
    if denied(status, code):
        return "denied"
    return "succeeded" if status < 400 else "failed"


def note_refusal(scope: Scope, code: str) -> None:
    """Say, for the audit record, that a limit refused this request with ``code``."""
    scope.setdefault("state", {})[CODE_KEY] = code


class AuditMiddleware(HttpMiddleware):
    """Writes the outcome records; ``routes`` maps each audited operation id to the
    type of resource it names."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, ResourceType | None],
        max_pending_refusals: int = 1024,
    ) -> None:
        super().__init__(app)
        self.routes = dict(routes)
        self.max_pending_refusals = max_pending_refusals
        self.pending_refusals = 0

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Shared with whatever copies the scope below: the principal and context land here.
        scope.setdefault("state", {})
        response = ResponseWatch(send)
        try:
            await self.app(scope, receive, response)
        except Exception:
            await self._record(scope, response.status)
            raise
        await self._record(scope, response.status)

    async def _record(self, scope: Scope, status: int) -> None:
        writer: AuditWriter | None = getattr(scope["app"].state, "audit", None)
        if writer is None:
            return
        state: dict[str, Any] = scope.get("state", {})
        code = state.get(CODE_KEY) if status >= 400 else None
        context = self._context(scope, state, status, code, writer)
        if context is None:
            return
        principal = state.get("principal")
        record = writer.record(
            context,
            stage="outcome",
            outcome=outcome_of(status, code),
            principal=principal if isinstance(principal, Principal) else None,
            client=client_of(scope),
            status=status,
            code=code,
        )
        overload = code == OVERLOADED
        if overload and self.pending_refusals >= self.max_pending_refusals:
            writer.dropped(record)
            return
        self.pending_refusals += overload
        try:
            await writer.write(record)
        except Unavailable:
            logger.error("audit outcome not written: %s %s", record.operation, status)
        finally:
            self.pending_refusals -= overload

    def _context(
        self, scope: Scope, state: dict[str, Any], status: int, code: object, writer: AuditWriter
    ) -> AuditContext | None:
        context = state.get(STATE_KEY)
        if isinstance(context, AuditContext):
            return context
        refused = denied(status, code)
        route = scope.get("route")
        if route is None and refused:
            # Refused by a limit before routing: find the route it was meant for.
            route, path_params = _route_for(scope)
            scope = {**scope, "path_params": path_params}
        operation = operation_id(route)
        if operation is None:
            if not refused:
                return None
            operation = UNROUTED
        if operation not in self.routes and not refused:
            return None
        kind = self.routes.get(operation)
        name = path_resource(scope.get("path_params", {})) if kind is not None else None
        return AuditContext(
            operation=operation, resource_type=kind, resource=writer.resource(kind, name)
        )


def _route_for(scope: Scope) -> tuple[BaseRoute | None, dict[str, Any]]:
    """The route (and its path parameters) that fully matches ``scope``, if any."""
    app = scope.get("app")
    return _match(getattr(getattr(app, "router", None), "routes", ()), scope)


def _match(routes: Iterable[BaseRoute], scope: Scope) -> tuple[BaseRoute | None, dict[str, Any]]:
    for route in routes:
        # FastAPI keeps an included router whole, and matches its routes in turn.
        included = getattr(route, "original_router", None)
        if included is not None:
            found, params = _match(included.routes, scope)
            if found is not None:
                return found, params
            continue
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, dict(child.get("path_params", {}))
    return None, {}
