"""Crypto worker settings, from ``X0_CRYPTO_*`` (infrastructure from ``X0_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from x0_common.keys import development_key, load_key, refuse_development_key
from x0_common.settings import ServiceSettings, env_config

# Development only: lets `make up` run without secrets. Refused in production.
DEVELOPMENT_KEK = development_key("x0tta6bl4-development-kek-000000")


class CryptoSettings(ServiceSettings):
    """What the crypto worker needs to know."""

    model_config = env_config("X0_CRYPTO_")

    port: int = 8001
    group_id: str = "x0-crypto"
    partitions: int = Field(default=6, ge=1)
    # Key-encryption key for private keys at rest: 32 bytes, base64url, given directly
    # or as a file (a mounted secret). The file wins when both are set.
    kek: SecretStr = SecretStr(DEVELOPMENT_KEK)
    kek_file: Path | None = None
    # Beacons older or newer than this are rejected; nonces are remembered this long.
    beacon_window_seconds: int = Field(default=60, ge=1, le=3600)
    auto_rotate_check_seconds: float = Field(default=60.0, gt=0)
    # Managed keys one tenant may hold (create and restore of a new name count).
    max_keys_per_tenant: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _kek_is_real(self) -> CryptoSettings:
        # Compared as bytes: the development KEK is refused inline, in a file, unpadded.
        file = self.kek_file
        if self.common.environment == "production" and (file is None or file.exists()):
            refuse_development_key(
                self.key_encryption_key(), DEVELOPMENT_KEK, name="X0_CRYPTO_KEK(_FILE)"
            )
        return self

    def key_encryption_key(self) -> bytes:
        """The 32-byte KEK, read from the file when one is configured."""
        return load_key(self.kek, self.kek_file, name="the key-encryption key")
