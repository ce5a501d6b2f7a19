"""Settings shared by every service, declared as data.

Infrastructure settings read the ``X0_`` prefix with ``__`` for nesting, e.g.
``X0_KAFKA__BOOTSTRAP_SERVERS`` or ``X0_POSTGRES__DSN``; each service adds its own
knobs under ``X0_<SERVICE>_``. OpenTelemetry reads the standard ``OTEL_*`` variables
itself (see :mod:`x0_common.tracing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from x0_common.keys import development_key, load_key, refuse_development_key

if TYPE_CHECKING:
    from x0_common.kafka.sealing import Sealer

# Development only: lets `make up` run without secrets. Refused in production.
DEVELOPMENT_SEALING_KEY = development_key("x0tta6bl4-development-sealing")
# The largest request or reply a message carries: the gateway's body limit. 256
# ML-DSA-87 key pairs (~2.6 MB of base64url) or a verify batch of them fit.
DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# Room beside the payload in one Kafka record batch: headers (trace context, the
# principal), the sealing nonce and tag, the record and batch framing.
MESSAGE_OVERHEAD_BYTES = 64 * 1024


class TlsSettings(BaseModel):
    """A workload's X.509 identity as PEM files, cert-manager style (``X0_TLS__CERT_FILE``,
    ``X0_TLS__KEY_FILE``, ``X0_TLS__BUNDLE_FILE``): the certificate chain (leaf first),
    its private key, and the CAs that peers' certificates must chain to. Reloaded when
    the files change (:mod:`x0_common.identity`)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    bundle_file: Path | None = None
    # Clients check that the server's certificate names the host they dialled.
    check_hostname: bool = True

    @property
    def configured(self) -> bool:
        """Whether any file is named (then all three must be)."""
        return any((self.cert_file, self.key_file, self.bundle_file))


class KafkaSettings(BaseModel):
    """Connection and delivery settings for every Kafka client."""

    bootstrap_servers: str = "127.0.0.1:9092"
    # SSL: mutual TLS with the identity in ``tls`` (the broker maps the certificate's CN
    # to the principal its ACLs name). PLAINTEXT only against a development broker that
    # opened a plaintext listener on purpose. Unset: SSL when ``tls`` names files.
    security_protocol: Literal["SSL", "PLAINTEXT"] | None = None
    # This client's identity; unset, CommonSettings fills it from X0_TLS__*.
    tls: TlsSettings | None = None
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
    # Request topics (and their dead letters) keep a record only as long as a request
    # can matter: its caller has had its answer or its 504 long before (the gateway's
    # deadline is at most 300 s), and the sealed payloads should not sit on disk.
    request_topic_retention_ms: int = Field(default=900_000, ge=60_000)
    # Topics this code creates (reply topics, DLQs); 3 in production, 1 on one broker.
    replication_factor: int = 1
    # AES-256 key that seals request and reply values (x0_common.kafka.sealing): 32
    # bytes, base64url, inline or as a file (a mounted secret; the file wins).
    sealing_key: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)
    sealing_key_file: Path | None = None
    # During a rotation: keys of messages still within their topics' retention.
    sealing_previous_keys: list[SecretStr] = Field(default_factory=list)
    # One maximum, from which every size limit on the way derives (max_message_bytes):
    # the gateway's body limit may not exceed it, so nothing is accepted that cannot
    # be delivered. The broker's message.max.bytes must be at least max_message_bytes
    # (deploy/local-stack/stack.sh sets it; a test checks).
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1024, le=64 * 1024 * 1024)

    @property
    def protocol(self) -> Literal["SSL", "PLAINTEXT"]:
        """The security protocol in effect (see ``security_protocol``)."""
        if self.security_protocol is not None:
            return self.security_protocol
        return "SSL" if self.tls is not None and self.tls.configured else "PLAINTEXT"

    @property
    def max_message_bytes(self) -> int:
        """The producers' max_request_size, the topics' max.message.bytes and the
        consumers' max_partition_fetch_bytes: the payload and its framing."""
        return self.max_payload_bytes + MESSAGE_OVERHEAD_BYTES

    def sealing_key_bytes(self) -> bytes:
        """The current sealing key."""
        return load_key(self.sealing_key, self.sealing_key_file, name="the Kafka sealing key")

    def sealer(self) -> Sealer:
        """Seals with the current key, opens with it or a previous one."""
        from x0_common.kafka.sealing import Sealer  # noqa: PLC0415 - settings load first

        previous = [
            load_key(key, None, name="a previous Kafka sealing key")
            for key in self.sealing_previous_keys
        ]
        return Sealer(self.sealing_key_bytes(), previous)


def read_password(file: Path) -> str:
    """A password kept in a file (a mounted secret, or the local stack's 0600 files):
    its first line. Read on every new connection, so a rotated file takes effect
    without a restart."""
    lines = file.read_text().splitlines()
    return lines[0] if lines else ""


class PostgresSettings(BaseModel):
    """The PostgreSQL each service keeps its own schema in, as the service's own role.

    The role's password is in the DSN or, preferably, in ``password_file`` (which wins):
    ``X0_POSTGRES__DSN=postgresql://crypto@db:5432/x0`` and
    ``X0_POSTGRES__PASSWORD_FILE=/run/secrets/postgres-password``.
    """

    dsn: SecretStr = SecretStr("postgresql://x0:x0@127.0.0.1:5432/x0")
    password_file: Path | None = None
    min_pool_size: int = 1
    max_pool_size: int = 10


class RedisSettings(BaseModel):
    """The Redis used for caches, replay windows and latest state, as the service's own
    ACL user: ``X0_REDIS__URL=redis://crypto@cache:6379/0`` and the password in the URL
    or, preferably, in ``X0_REDIS__PASSWORD_FILE`` (which wins)."""

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    password_file: Path | None = None


def env_config(prefix: str, *, partial_update: bool = False) -> SettingsConfigDict:
    """How every x0 settings class reads the environment: ``prefix`` variables, ``__``
    for nesting, empty values as unset, unknown variables ignored. ``partial_update``
    lets one nested variable change one field of a nested model's default."""
    return SettingsConfigDict(
        env_prefix=prefix,
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
        nested_model_default_partial_update=partial_update,
    )


class CommonSettings(BaseSettings):
    """Infrastructure every service shares, from ``X0_*`` variables."""

    model_config = env_config("X0_")

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    # The workload's identity (mutual TLS), shared by every client that uses it.
    tls: TlsSettings = Field(default_factory=TlsSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @model_validator(mode="after")
    def _kafka_identity(self) -> CommonSettings:
        # Kafka connects as the workload unless X0_KAFKA__TLS__* names another identity.
        if self.kafka.tls is None and self.tls.configured:
            self.kafka = self.kafka.model_copy(update={"tls": self.tls})
        return self

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> CommonSettings:
        if self.environment == "production":
            dsn = self.postgres.dsn.get_secret_value()
            if "x0:x0@" in dsn:
                msg = "X0_POSTGRES__DSN still holds the development password"
                raise ValueError(msg)
            # A mounted file is read when it is there; a missing one fails at first use.
            file = self.kafka.sealing_key_file
            if file is None or file.exists():
                refuse_development_key(
                    self.kafka.sealing_key_bytes(),
                    DEVELOPMENT_SEALING_KEY,
                    name="X0_KAFKA__SEALING_KEY(_FILE)",
                )
        return self


class ServiceSettings(BaseSettings):
    """What every service process reads besides its own knobs: the shared
    infrastructure (``X0_*``) and the address it serves HTTP on."""

    common: CommonSettings = Field(default_factory=CommonSettings)
    host: str = "127.0.0.1"
    port: int
