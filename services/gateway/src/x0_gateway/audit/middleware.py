"""The outcome record of every audited or refused request, once it is answered.

A pure ASGI middleware inside the metrics and tracing layers (the trace id is the
request's) and outside the exception handlers (it sees the status they answered).
It writes, after the response is sent:

- the outcome of a request that wrote an attempt record (same ``request_id``);
- the one record of a request to an audited route that ended before its attempt (an
  invalid body, an idempotent replay);
- the one record of every 401, 403 and 429, on any route: ``outcome="denied"``.

An outcome that cannot be written is logged and counted
(``x0_audit_records_total{result="failed"}``), never raised: the operation is done
by then, and its attempt record already says it was about to run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from x0_common.errors import Unavailable
from x0_common.events.audit import Outcome, ResourceType
from x0_common.principal import Principal
from x0_gateway.audit.policy import path_resource
from x0_gateway.audit.trail import STATE_KEY, operation_id
from x0_gateway.audit.writer import AuditContext, AuditWriter, client_of

logger = logging.getLogger(__name__)

DENIED = frozenset({401, 403, 429})
# request.state key of the problem code of an error answer (x0_gateway.problems).
CODE_KEY = "problem_code"


def outcome_of(status: int) -> Outcome:
    """succeeded (< 400), denied (401, 403, 429) or failed."""
    if status in DENIED:
        return "denied"
    return "succeeded" if status < 400 else "failed"


class AuditMiddleware:
    """Writes the outcome records; ``routes`` maps each audited operation id to the
    type of resource it names."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, ResourceType | None]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Shared with whatever copies the scope below: the principal and context land here.
        scope.setdefault("state", {})
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            await self._record(scope, status)
            raise
        await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        writer: AuditWriter | None = getattr(scope["app"].state, "audit", None)
        if writer is None:
            return
        state: dict[str, Any] = scope.get("state", {})
        context = self._context(scope, state, status, writer)
        if context is None:
            return
        principal = state.get("principal")
        record = writer.record(
            context,
            stage="outcome",
            outcome=outcome_of(status),
            principal=principal if isinstance(principal, Principal) else None,
            client=client_of(scope),
            status=status,
            code=state.get(CODE_KEY) if status >= 400 else None,
        )
        try:
            await writer.write(record)
        except Unavailable:
            logger.error("audit outcome not written: %s %s", record.operation, status)

    def _context(
        self, scope: Scope, state: dict[str, Any], status: int, writer: AuditWriter
    ) -> AuditContext | None:
        context = state.get(STATE_KEY)
        if isinstance(context, AuditContext):
            return context
        operation = operation_id(scope.get("route"))
        if operation is None or (operation not in self.routes and status not in DENIED):
            return None
        kind = self.routes.get(operation)
        name = path_resource(scope.get("path_params", {})) if kind is not None else None
        return AuditContext(
            operation=operation, resource_type=kind, resource=writer.resource(kind, name)
        )
