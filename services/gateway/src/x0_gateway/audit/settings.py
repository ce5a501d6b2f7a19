"""``X0_GATEWAY_AUDIT__*``: the audit trail's settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from x0_common.events.audit import TOPIC
from x0_common.keys import development_key, load_key

# Development only; a production gateway refuses it (as it refuses the pepper).
DEVELOPMENT_AUDIT_KEY = development_key("x0tta6bl4-development-audit-hmac")


class AuditSettings(BaseModel):
    """Where audit records go, how long they are kept, and the key that hides names."""

    # HMAC key of the hidden resource names (32 bytes, base64url, inline or a file).
    # Keep it: with it an operator finds a name's records; changing it splits the trail.
    hmac_key: SecretStr = SecretStr(DEVELOPMENT_AUDIT_KEY)
    hmac_key_file: Path | None = None
    # An attempt record not acknowledged by Kafka within this refuses the operation (503).
    write_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # The topic written and consumed; x0.audit (tests point a gateway elsewhere).
    topic: str = Field(default=TOPIC, pattern=r"^[A-Za-z0-9._-]+$")
    # This replica copies x0.audit into PostgreSQL (its consumer group shares the work).
    consume: bool = True
    group_id: str = "x0-gateway-audit"
    # Records are kept at least this long in PostgreSQL, and at most a month longer:
    # a month's partition is dropped once its last day is older than this.
    retention_days: int = Field(default=400, ge=31, le=3650)
    # How often the consumer creates next month's partition and drops expired ones.
    maintenance_interval_seconds: float = Field(default=3600.0, gt=0)

    def key(self) -> bytes:
        """The 32-byte HMAC key, read from the file when one is configured."""
        return load_key(self.hmac_key, self.hmac_key_file, name="the audit HMAC key")
