"""The audit trail's one message (topic ``x0.audit``, one-way).

Written by the gateway only, read by its audit consumer into PostgreSQL; no caller
publishes it and no route serves it (``GET /v1/audit`` reads the gateway's table).
"""

from __future__ import annotations

from x0_common.contract.operation import Operation
from x0_common.contract.table import Table
from x0_common.events import audit as a


class Audit(Table):
    """The audit trail."""

    RECORD = Operation(
        name="audit_record",
        message_type="audit.record.v1",
        topic=a.TOPIC,
        request=a.AuditRecord,
        result=None,
        summary="Who did what to a managed key, collection, tenant or API key, or was "
        "refused: written before the operation runs (fail closed) and once it is answered",
        scope="internal",
        delivery="publish",
        key="the tenant (a request's two records stay in order); none when unauthenticated",
    )
