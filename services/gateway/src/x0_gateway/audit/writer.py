"""Builds audit records and publishes them to ``x0.audit``.

The records travel unsealed (like the other topics the services consume with no
reply): they hold no secret, and hidden names are digests already. The producer is
the requester's: ``acks=all`` with idempotence, so a record the writer reports
written is on every in-sync replica.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from x0_common.contract import Audit
from x0_common.errors import Unavailable
from x0_common.events.audit import AuditRecord, Outcome, ResourceType, Stage
from x0_common.kafka import Requester
from x0_common.metrics import MetricFactory
from x0_common.principal import Principal
from x0_common.tracing import current_trace_ids
from x0_gateway.audit.policy import stored_resource
from x0_gateway.audit.settings import AuditSettings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class AuditContext:
    """What a request's records share; kept in ``request.state`` once an attempt is made."""

    operation: str
    resource_type: ResourceType | None = None
    resource: str | None = None  # as stored: an id, or a digest
    request_id: uuid.UUID = field(default_factory=uuid.uuid4)
    attempted: bool = False


class AuditMetrics:
    """``x0_audit_records_total{service, stage, result}``: written, or failed to be."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        declare = MetricFactory(registry)
        self.records = declare.counter(
            "x0_audit_records_total",
            "Audit records the gateway published to x0.audit, by stage and result "
            "(written, failed; dropped: overload refusals past the pending bound)",
            "stage",
            "result",
        )


class AuditWriter:
    """Publishes one replica's audit records."""

    def __init__(
        self, requester: Requester, settings: AuditSettings, metrics: AuditMetrics
    ) -> None:
        self._requester = requester
        self._settings = settings
        self._key = settings.key()
        self._metrics = metrics

    def resource(self, kind: ResourceType | None, name: str | None) -> str | None:
        """The stored form of a resource name (a digest for callers' names)."""
        return stored_resource(self._key, kind, name)

    def record(
        self,
        context: AuditContext,
        *,
        stage: Stage,
        outcome: Outcome,
        principal: Principal | None,
        client: str | None,
        status: int | None = None,
        code: str | None = None,
    ) -> AuditRecord:
        """A record of ``context`` at ``stage``, stamped now, in the current trace."""
        ids = current_trace_ids()
        return AuditRecord(
            id=uuid.uuid4(),
            request_id=context.request_id,
            at=datetime.now(UTC),
            stage=stage,
            operation=context.operation,
            outcome=outcome,
            status=status,
            code=code,
            tenant=None if principal is None else principal.tenant,
            subject=None if principal is None else principal.subject,
            resource_type=context.resource_type,
            resource=context.resource,
            trace_id=None if ids is None else ids[0],
            client_address=client,
        )

    async def write(self, record: AuditRecord) -> None:
        """Publish ``record``; :class:`Unavailable` when Kafka does not acknowledge it
        within ``write_timeout_seconds``."""
        row = Audit.RECORD
        try:
            async with asyncio.timeout(self._settings.write_timeout_seconds):
                await self._requester.publish(
                    self._settings.topic, row.message_type, record, key=record.tenant
                )
        except (Unavailable, TimeoutError, RuntimeError) as error:
            self._metrics.records.labels(self._metrics.service, record.stage, "failed").inc()
            logger.warning(
                "audit record not written (%s): %s %s",
                type(error).__name__,
                record.stage,
                record.operation,
            )
            raise Unavailable(
                "the audit trail cannot be written right now; nothing was done",
                details={"reason": "audit_unavailable", "retry_after_seconds": 1},
            ) from None
        self._metrics.records.labels(self._metrics.service, record.stage, "written").inc()

    def dropped(self, record: AuditRecord) -> None:
        """Count a record left unwritten on purpose (too many refusals pending)."""
        self._metrics.records.labels(self._metrics.service, record.stage, "dropped").inc()


def client_of(scope: Mapping[str, Any]) -> str | None:
    """The peer's address as the server saw it (behind a proxy: the proxy's, unless
    uvicorn's ``--forwarded-allow-ips`` trusts it)."""
    client = scope.get("client")
    return None if not client else str(client[0])[:64]
