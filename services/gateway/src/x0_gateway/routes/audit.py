"""``GET /v1/audit``: the audit trail, for callers with the ``admin`` scope.

Read from the gateway's own table (``gateway.audit_log``), which its audit consumer
fills from ``x0.audit`` within a second or so of each request. Filters: a time range,
the principal's subject or tenant, a resource, an outcome, an operation; newest
first, a page at a time (``next_cursor``). A resource is given as named (a key or
collection name, an API key or tenant id): names are matched by their digest.
(No ``from __future__ import annotations``: FastAPI must see real annotations.)
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from x0_common.errors import (
    Forbidden,
    InvalidInput,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from x0_common.events.audit import AuditRecord, Outcome
from x0_gateway.audit.log import AuditLog, AuditQuery
from x0_gateway.audit.policy import hide
from x0_gateway.auth.guard import authorise
from x0_gateway.limits.ratelimit import rate_limit_class

CURSOR_PATTERN = r"^[0-9]{1,20}\.[0-9a-f]{32}$"


def _described(error: type[Exception]) -> dict[str, str]:
    return {"description": (error.__doc__ or "").strip().splitlines()[0]}


router = APIRouter(
    prefix="/v1/audit",
    tags=["admin"],
    # The admin rate class, like the admin routes.
    dependencies=[Depends(authorise("admin")), Depends(rate_limit_class("admin"))],
    responses={
        error.http_status: _described(error)
        for error in (
            Unauthenticated,
            Forbidden,
            ValidationFailed,
            RateLimited,
            Unavailable,
            InvalidInput,
        )
    },
)


class AuditPage(BaseModel):
    """A page of records, newest first."""

    records: list[AuditRecord]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; none: last")


async def _audit_log(request: Request) -> AuditLog:
    log: AuditLog | None = getattr(request.app.state, "audit_log", None)
    if log is None:
        raise Unavailable("the gateway is starting")
    return log


def cursor_of(record: AuditRecord) -> str:
    """``<unix microseconds>.<id hex>`` of the last record of a page."""
    micros = int(record.at.timestamp()) * 1_000_000 + record.at.microsecond
    return f"{micros}.{record.id.hex}"


def _position(cursor: str) -> tuple[datetime, uuid.UUID]:
    micros, _, hexid = cursor.partition(".")
    seconds, rest = divmod(int(micros), 1_000_000)
    try:
        at = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)
    except (OverflowError, ValueError, OSError):
        raise InvalidInput("the cursor is not one this API gave") from None
    return at, uuid.UUID(hex=hexid)


Text = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]


@router.get(
    "",
    summary="Audit records: operations on keys, collections, tenants and API keys, "
    "and refused requests",
    operation_id="audit_list",
    openapi_extra={"x-x0-scope": "admin"},
)
async def list_records(
    *,
    request: Request,
    log: Annotated[AuditLog, Depends(_audit_log)],
    since: Annotated[AwareDatetime | None, Query(description="from this time (included)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="to this time (excluded)")] = None,
    subject: Annotated[Text | None, Query(description="`key:<id>` or `jwt:<iss>:<sub>`")] = None,
    tenant: Annotated[Text | None, Query()] = None,
    resource: Annotated[Text | None, Query(description="a key or collection name, an id")] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    operation: Annotated[Text | None, Query(description="e.g. `create_key`")] = None,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Records matching every filter given, newest first."""
    resources: tuple[str, ...] = ()
    if resource is not None:
        resources = (resource, hide(request.app.state.audit_key, resource))
    query = AuditQuery(
        since=since,
        until=until,
        subject=subject,
        tenant=tenant,
        resources=resources,
        outcome=outcome,
        operation=operation,
        before=None if cursor is None else _position(cursor),
        limit=limit + 1,
    )
    found = await log.find(query)
    page = found[:limit]
    more = len(found) > limit
    return AuditPage(records=page, next_cursor=cursor_of(page[-1]) if more else None)
