"""The attempt record: written before an audited operation runs, or the operation is
refused (503, ``details.reason: audit_unavailable``) and not performed.

Contract rows get it from :func:`audited_endpoint` (``routing.build_router`` wraps
every audited row's endpoint); admin writes call :func:`attempt` themselves, once
their body is read. The outcome record follows from the middleware.
(No ``from __future__ import annotations``: FastAPI must see real annotations.)
"""

import inspect
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.routing import BaseRoute

from x0_common.contract import Operation
from x0_common.errors import Unavailable
from x0_common.events.audit import ResourceType
from x0_common.principal import Principal
from x0_gateway.audit.policy import named_resource, resource_type
from x0_gateway.audit.writer import AuditContext, AuditWriter, client_of

STATE_KEY = "x0_audit"


async def _request(request: Request) -> Request:
    return request


RequestDep = Annotated[Request, Depends(_request)]


def operation_id(route: BaseRoute | None) -> str | None:
    """The operation id of the route a request matched."""
    return getattr(route, "operation_id", None) or getattr(route, "name", None)


async def attempt(request: Request, kind: ResourceType | None, name: str | None) -> None:
    """Write the attempt record of ``request`` on ``name``; raise :class:`Unavailable`
    when it cannot be written (the caller then does nothing)."""
    writer: AuditWriter | None = getattr(request.app.state, "audit", None)
    operation = operation_id(request.scope.get("route")) or request.url.path
    context = AuditContext(operation=operation, resource_type=kind)
    # Set first: the outcome record names the resource even if this write fails.
    setattr(request.state, STATE_KEY, context)
    if writer is None:
        raise Unavailable(
            "the audit trail is not open yet", details={"reason": "audit_unavailable"}
        )
    context.resource = writer.resource(kind, name)
    principal = getattr(request.state, "principal", None)
    await writer.write(
        writer.record(
            context,
            stage="attempt",
            outcome="attempted",
            principal=principal if isinstance(principal, Principal) else None,
            client=client_of(request.scope),
        )
    )
    context.attempted = True


def audited_endpoint(operation: Operation, endpoint: Any) -> Any:
    """``endpoint`` behind an attempt record naming the resource its arguments name."""
    signature = inspect.signature(endpoint, eval_str=True)
    kind = resource_type(operation)

    async def with_attempt(*, x0_audit_request: Request, **arguments: Any) -> Any:
        await attempt(x0_audit_request, kind, named_resource(operation, arguments))
        return await endpoint(**arguments)

    # Through a dependency: FastAPI hands a bare Request parameter to one name only, and
    # the idempotency wrapper around this one takes it too.
    extra = inspect.Parameter(
        "x0_audit_request", inspect.Parameter.KEYWORD_ONLY, annotation=RequestDep
    )
    with_attempt.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    with_attempt.__name__ = endpoint.__name__
    with_attempt.__doc__ = endpoint.__doc__
    return with_attempt


def named(request: Request, kind: ResourceType, name: str) -> None:
    """Name the resource in the outcome record (e.g. the id of what was just made)."""
    context = getattr(request.state, STATE_KEY, None)
    writer: AuditWriter | None = getattr(request.app.state, "audit", None)
    if isinstance(context, AuditContext) and writer is not None:
        context.resource_type = kind
        context.resource = writer.resource(kind, name)
