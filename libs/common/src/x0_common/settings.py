"""Settings shared by every service, declared as data.

Infrastructure settings read the ``X0_`` prefix with ``__`` for nesting, e.g.
``X0_KAFKA__BOOTSTRAP_SERVERS`` or ``X0_POSTGRES__DSN``; each service adds its own
knobs under ``X0_<SERVICE>_``. OpenTelemetry reads the standard ``OTEL_*`` variables
itself (see :mod:`x0_common.tracing`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    """Connection and delivery settings for every Kafka client."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "x0"
    request_timeout_ms: int = 30_000
    # A fetch returns as soon as one byte is there; the wait only bounds idle polls.
    fetch_max_wait_ms: int = 100
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    # Offsets of finished messages are committed in the background at this pace,
    # so a commit round trip never sits between two messages.
    commit_interval_ms: int = 200
    reply_topic_retention_ms: int = 3_600_000
    # Topics this code creates (reply topics, DLQs); 3 in production, 1 on one broker.
    replication_factor: int = 1


class PostgresSettings(BaseModel):
    """The PostgreSQL each service keeps its own schema in."""

    dsn: SecretStr = SecretStr("postgresql://x0:x0@127.0.0.1:5432/x0")
    min_pool_size: int = 1
    max_pool_size: int = 10


class RedisSettings(BaseModel):
    """The Redis used for caches, replay windows and latest state."""

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")


class CommonSettings(BaseSettings):
    """Infrastructure every service shares, from ``X0_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="X0_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> CommonSettings:
        if self.environment == "production":
            dsn = self.postgres.dsn.get_secret_value()
            if "x0:x0@" in dsn:
                msg = "X0_POSTGRES__DSN still holds the development password"
                raise ValueError(msg)
        return self
