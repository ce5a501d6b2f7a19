"""Crypto worker settings, from ``X0_CRYPTO_*`` (infrastructure from ``X0_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from x0_common.keys import decode_key, development_key, load_key, refuse_development_key
from x0_common.settings import ServiceSettings, env_config
from x0_crypto.domain.envelope import Keyring

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
    # KEK rotation: the KEKs that came before, still able to open what they wrapped
    # until `python -m x0_crypto rewrap-kek` has moved every stored key version to the
    # current one. base64url keys separated by commas or whitespace, inline or as a
    # file (one a line); the file wins. Each is known by its id, never by its bytes.
    previous_keks: SecretStr | None = None
    previous_keks_file: Path | None = None
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
        previous_file = self.previous_keks_file
        if self.common.environment == "production" and (
            previous_file is None or previous_file.exists()
        ):
            for key in self.previous_key_encryption_keys():
                refuse_development_key(key, DEVELOPMENT_KEK, name="X0_CRYPTO_PREVIOUS_KEKS(_FILE)")
        return self

    def key_encryption_key(self) -> bytes:
        """The 32-byte KEK, read from the file when one is configured."""
        return load_key(self.kek, self.kek_file, name="the key-encryption key")

    def previous_key_encryption_keys(self) -> list[bytes]:
        """The previous KEKs (32 bytes each), read from the file when one is configured."""
        if self.previous_keks_file is not None:
            text = self.previous_keks_file.read_text()
        elif self.previous_keks is not None:
            text = self.previous_keks.get_secret_value()
        else:
            return []
        return [
            decode_key(item, name=f"previous key-encryption key #{number}")
            for number, item in enumerate(text.replace(",", " ").split(), start=1)
        ]

    def keyring(self) -> Keyring:
        """The current KEK and the previous ones: what seals, and what still opens."""
        return Keyring(self.key_encryption_key(), tuple(self.previous_key_encryption_keys()))
