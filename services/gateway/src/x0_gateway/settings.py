"""Gateway settings, from ``X0_GATEWAY_*`` (infrastructure from ``X0_*``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from x0_common.events.telemetry import DEFAULT_MAX_CLOCK_SKEW_SECONDS, DEFAULT_RETENTION_DAYS
from x0_common.keys import development_key, load_key, refuse_development_key
from x0_common.principal import TenantId
from x0_common.settings import DEFAULT_MAX_PAYLOAD_BYTES, ServiceSettings, env_config
from x0_gateway.audit.settings import DEVELOPMENT_AUDIT_KEY, AuditSettings
from x0_gateway.limits.connections import ConnectionSettings
from x0_gateway.limits.policy import RateLimitSettings

# Development only: lets `make up` run without secrets. Refused in production.
DEVELOPMENT_PEPPER = development_key("x0tta6bl4-development-pepper")
# Signature algorithms a token may use: asymmetric only. "none" and the HMAC family
# (HS*) are never accepted, so a public key can never be used as an HMAC secret.
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class JwtSettings(BaseModel):
    """OIDC/JWT bearer tokens (``X0_GATEWAY_JWT__*``); off unless a JWKS is configured."""

    # The identity provider's JWKS: a URL (https in production) or a file.
    jwks_url: str | None = Field(default=None, pattern=r"^https?://")
    jwks_file: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256", "EdDSA"])
    # Clock skew allowed on exp, nbf and iat.
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # The JWKS is read again after this long, and on an unknown kid (rotation), but
    # not more often than every jwks_min_refresh_seconds (unknown kids cost nothing).
    jwks_max_age_seconds: float = Field(default=300.0, gt=0)
    jwks_min_refresh_seconds: float = Field(default=10.0, ge=0)
    # Claims that carry the tenant and the scopes (a space-separated string or a list).
    tenant_claim: str = "x0_tenant"
    scope_claim: str = "scope"
    # The tenant of tokens without a tenant claim; None refuses them.
    default_tenant: TenantId | None = None

    @property
    def enabled(self) -> bool:
        """True when tokens are accepted (a JWKS is configured)."""
        return self.jwks_url is not None or self.jwks_file is not None

    @model_validator(mode="after")
    def _complete(self) -> JwtSettings:
        if self.jwks_url is not None and self.jwks_file is not None:
            msg = "set X0_GATEWAY_JWT__JWKS_URL or X0_GATEWAY_JWT__JWKS_FILE, not both"
            raise ValueError(msg)
        refused = set(self.algorithms) - ASYMMETRIC_ALGORITHMS
        if refused or not self.algorithms:
            msg = f"X0_GATEWAY_JWT__ALGORITHMS may hold only {sorted(ASYMMETRIC_ALGORITHMS)}"
            raise ValueError(msg)
        if self.enabled and (not self.issuer or not self.audience):
            msg = "tokens need X0_GATEWAY_JWT__ISSUER and X0_GATEWAY_JWT__AUDIENCE"
            raise ValueError(msg)
        return self


class GatewaySettings(ServiceSettings):
    """What one gateway replica needs to know."""

    # X0_GATEWAY_RATE_LIMITS__CRYPTO__PER_CREDENTIAL changes that one number only.
    model_config = env_config("X0_GATEWAY_", partial_update=True)

    port: int = 8000
    # Prometheus metrics are served on this port only, never on the API's port (so
    # callers never see them); run by `python -m x0_gateway`, not by create_app.
    # 0 takes any free port (tests that start several gateways and scrape none).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    # Names this replica's reply topic; must be unique among running replicas and
    # stable across restarts (a StatefulSet pod name), so topics do not pile up.
    replica_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9._-]+$")
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_in_flight: int = Field(default=10_000, gt=0)
    # A full verify batch of ML-DSA-87 (256 x public key + signature, base64url) is ~2.5 MB.
    # At most X0_KAFKA__MAX_PAYLOAD_BYTES: nothing is accepted that Kafka cannot carry.
    max_body_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0)
    rate_limits: RateLimitSettings = RateLimitSettings()
    connections: ConnectionSettings = ConnectionSettings()
    # Idempotency-Key answers are kept this long (per tenant and credential).
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60, le=7 * 86_400)
    # Browser origins allowed to call the API (CORS); none unless set, e.g.
    # X0_GATEWAY_CORS_ORIGINS=https://console.example.com,https://ops.example.com
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # POST /v1/telemetry/events refuses events stamped further ahead than this: a node
    # with a runaway clock would otherwise pin its "latest" state in the future.
    telemetry_max_clock_skew_seconds: float = Field(
        default=DEFAULT_MAX_CLOCK_SKEW_SECONDS, ge=0, le=86_400
    )
    # ... and events older than the telemetry worker's history retention (it would
    # dead-letter them): keep equal to X0_TELEMETRY_RETENTION_DAYS.
    telemetry_retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1, le=3650)
    # HMAC key of the stored API-key digests: 32 bytes, base64url, inline or as a file
    # (a mounted secret; the file wins). Changing it invalidates every key.
    api_key_pepper: SecretStr = SecretStr(DEVELOPMENT_PEPPER)
    api_key_pepper_file: Path | None = None
    # How long a replica trusts a key it looked up: the longest a revocation takes to
    # reach every replica. At most 5 s.
    api_key_cache_seconds: float = Field(default=2.0, ge=0, le=5)
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    # The audit trail (X0_GATEWAY_AUDIT__*): its HMAC key, consumer and retention.
    audit: AuditSettings = Field(default_factory=AuditSettings)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _body_fits_kafka(self) -> GatewaySettings:
        carried = self.common.kafka.max_payload_bytes
        if self.max_body_bytes > carried:
            msg = (
                f"X0_GATEWAY_MAX_BODY_BYTES ({self.max_body_bytes}) exceeds what Kafka "
                f"carries (X0_KAFKA__MAX_PAYLOAD_BYTES, {carried})"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _pepper_is_real(self) -> GatewaySettings:
        # Compared as bytes: the development pepper is refused inline, in a file, unpadded.
        file = self.api_key_pepper_file
        if self.common.environment != "development" and (file is None or file.exists()):
            refuse_development_key(
                self.pepper(), DEVELOPMENT_PEPPER, name="X0_GATEWAY_API_KEY_PEPPER(_FILE)"
            )
        file = self.audit.hmac_key_file
        if self.common.environment != "development" and (file is None or file.exists()):
            refuse_development_key(
                self.audit.key(), DEVELOPMENT_AUDIT_KEY, name="X0_GATEWAY_AUDIT__HMAC_KEY(_FILE)"
            )
        return self

    def pepper(self) -> bytes:
        """The 32-byte pepper, read from the file when one is configured."""
        return load_key(self.api_key_pepper, self.api_key_pepper_file, name="the API-key pepper")

    @property
    def reply_topic(self) -> str:
        """The topic workers answer this replica on."""
        return f"x0.gateway.replies.{self.replica_id}"
