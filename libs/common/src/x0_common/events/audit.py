"""Audit records: who did what to which managed key, collection, tenant or API key,
and every refused request (topic ``x0.audit``).

The gateway writes one record before it forwards an operation that must be audited
(``stage="attempt"``: if Kafka does not take it, the operation is refused) and one
once the answer is known (``stage="outcome"``); a refused request (401, 403, 429,
413, 503 overloaded) and an audited route answered before its attempt (a 422 body,
say) get one outcome record.
The two records of a request share its ``request_id``. The gateway's audit consumer
copies them into PostgreSQL (``gateway.audit_log``, append-only).

A record never holds a request or reply body, a credential or a secret. Resource
names chosen by callers (managed key and collection names) are HMAC-SHA-256 digests
under the gateway's audit key, ``hmac-sha256:<hex>``, as Vault's audit devices hash
what they must not reveal; ids the system made (API key ids, tenant ids) are kept as
they are. ``docs/security.md`` (Audit) lists what is hashed and why.
"""

from __future__ import annotations

import uuid
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TOPIC: Final = "x0.audit"
# Partitions of x0.audit: how many gateway replicas share its consumption.
PARTITIONS: Final = 3
# Kafka keeps records this long: a buffer for the consumer, PostgreSQL is the store.
TOPIC_RETENTION_MS: Final = 7 * 24 * 3600 * 1000
# The prefix of a hashed resource name.
HMAC_PREFIX: Final = "hmac-sha256:"

Stage = Literal["attempt", "outcome"]
# attempted: about to run (attempt records only); succeeded: 2xx/3xx; denied: 401,
# 403 or 429 (who or how often, not what), or refused by a gateway limit (413, 503
# overloaded); failed: any other 4xx or 5xx.
Outcome = Literal["attempted", "succeeded", "failed", "denied"]
ResourceType = Literal["key", "collection", "tenant", "api_key"]


class AuditRecord(BaseModel):
    """One audit record, as published to ``x0.audit`` and stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(description="unique per record: a redelivered record is stored once")
    request_id: uuid.UUID = Field(description="shared by a request's attempt and outcome")
    at: AwareDatetime
    stage: Stage
    operation: str = Field(max_length=128, description="the contract row or admin operation id")
    outcome: Outcome
    status: int | None = Field(default=None, ge=100, le=599, description="none on attempts")
    code: str | None = Field(
        default=None, max_length=64, description="the problem's code of a refusal or failure"
    )
    tenant: str | None = Field(default=None, max_length=64, description="none: unauthenticated")
    subject: str | None = Field(
        default=None, max_length=256, description="`key:<id>` or `jwt:<iss>:<sub>`"
    )
    resource_type: ResourceType | None = None
    resource: str | None = Field(
        default=None, max_length=128, description="an id, or `hmac-sha256:<hex>` of a name"
    )
    trace_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    client_address: str | None = Field(default=None, max_length=64)
