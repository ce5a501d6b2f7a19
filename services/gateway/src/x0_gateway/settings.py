"""Gateway settings, from ``X0_GATEWAY_*`` (infrastructure from ``X0_*``)."""

from __future__ import annotations

import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from x0_common.events.telemetry import DEFAULT_MAX_CLOCK_SKEW_SECONDS, DEFAULT_RETENTION_DAYS
from x0_common.settings import CommonSettings


class GatewaySettings(BaseSettings):
    """What one gateway replica needs to know."""

    model_config = SettingsConfigDict(
        env_prefix="X0_GATEWAY_", env_nested_delimiter="__", env_ignore_empty=True, extra="ignore"
    )

    common: CommonSettings = Field(default_factory=CommonSettings)
    host: str = "127.0.0.1"
    port: int = 8000
    # Names this replica's reply topic; must be unique among running replicas and
    # stable across restarts (a StatefulSet pod name), so topics do not pile up.
    replica_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9._-]+$")
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_in_flight: int = Field(default=10_000, gt=0)
    # A full verify batch of ML-DSA-87 (256 x public key + signature, base64url) is ~2.5 MB.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # POST /v1/telemetry/events refuses events stamped further ahead than this: a node
    # with a runaway clock would otherwise pin its "latest" state in the future.
    telemetry_max_clock_skew_seconds: float = Field(
        default=DEFAULT_MAX_CLOCK_SKEW_SECONDS, ge=0, le=86_400
    )
    # ... and events older than the telemetry worker's history retention (it would
    # dead-letter them): keep equal to X0_TELEMETRY_RETENTION_DAYS.
    telemetry_retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1, le=3650)

    @property
    def reply_topic(self) -> str:
        """The topic workers answer this replica on."""
        return f"x0.gateway.replies.{self.replica_id}"
