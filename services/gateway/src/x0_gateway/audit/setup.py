"""The audit trail's part of the gateway's wiring: what is audited, start and stop."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from x0_common.contract import OPERATIONS
from x0_common.events.audit import ResourceType
from x0_gateway.audit.log import AuditLog
from x0_gateway.audit.policy import audited, resource_type
from x0_gateway.audit.sink import AuditSink, ensure_audit_topic
from x0_gateway.audit.writer import AuditWriter
from x0_gateway.routes import admin
from x0_gateway.settings import GatewaySettings

# GET /v1/audit: its reads are audited too (one outcome record, no attempt).
AUDIT_READ = "audit_list"


def audited_routes() -> dict[str, ResourceType | None]:
    """Every audited operation id, with the type of resource it names."""
    rows = {op.name: resource_type(op) for op in OPERATIONS if op.http and audited(op)}
    return rows | admin.AUDITED | {AUDIT_READ: None}


async def open_audit(app: FastAPI, settings: GatewaySettings, pool: asyncpg.Pool) -> None:
    """The writer (on the app's requester), the table and, unless turned off, the
    consumer; the topic is created with its partitions and retention first. The
    table's migration ran with the key store's (``open_key_store``)."""
    await ensure_audit_topic(settings.common.kafka, settings.audit)
    log = AuditLog(pool, retention_days=settings.audit.retention_days)
    await log.maintain()
    app.state.audit_log = log
    app.state.audit = AuditWriter(app.state.requester, settings.audit, app.state.audit_metrics)
    if settings.audit.consume:
        sink = AuditSink(settings.common.kafka, settings.audit, log)
        await sink.start()
        app.state.audit_sink = sink


async def close_audit(app: FastAPI) -> None:
    """Stop the consumer; nothing is written after this."""
    app.state.audit = app.state.audit_log = None
    sink: AuditSink | None = getattr(app.state, "audit_sink", None)
    app.state.audit_sink = None
    if sink is not None:
        await sink.stop()
