"""Managed keys (HashiCorp Vault's Transit engine is the model): the service holds them.

Private keys never leave the service unless the key is ``exportable``; they are
stored encrypted. Ciphertexts of ``encrypt`` are text: ``x0:v<version>:<base64url>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from x0_common.events.binary import Base64Bytes
from x0_common.events.crypto.signing import SignatureContext
from x0_common.events.names import KeyName, KeyType
from x0_common.events.storable import INT4_MAX, StorableText

# Versions and periods are int4 columns in the crypto schema.
Version = Annotated[int, Field(ge=1, le=INT4_MAX)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateKeyRequest(_Message):
    """Create a named key; the same ``request_id`` twice creates it once."""

    name: KeyName
    type: KeyType = Field(examples=["X-Wing"])
    exportable: bool = False
    deletion_allowed: bool = False
    # Rotate automatically once the latest version is this old (None: never).
    auto_rotate_period_seconds: int | None = Field(default=None, ge=60, le=INT4_MAX)
    request_id: StorableText | None = Field(default=None, max_length=128)


class KeyNameRequest(_Message):
    """Names one key (read, rotate, delete, backup)."""

    name: KeyName


class ListKeysRequest(_Message):
    """List key names."""


class ListKeysResult(_Message):
    """Every key name, sorted."""

    names: list[str]


class UpdateKeyConfigRequest(_Message):
    """Change a key's settings; fields left out stay as they are."""

    name: KeyName
    min_decryption_version: Version | None = None
    deletion_allowed: bool | None = None
    # Like Vault: once exportable, a key cannot be made non-exportable again.
    exportable: Literal[True] | None = None
    auto_rotate_period_seconds: int | None = Field(default=None, ge=0, le=INT4_MAX)


class KeyVersionInfo(_Message):
    """One version's public key."""

    version: int
    public_key: Base64Bytes
    created_at: datetime


class KeyInfo(_Message):
    """A key's settings and the public key of every version."""

    name: str
    type: str
    exportable: bool
    deletion_allowed: bool
    auto_rotate_period_seconds: int | None
    latest_version: int
    min_decryption_version: int
    created_at: datetime
    versions: list[KeyVersionInfo]


class DeleteKeyResult(_Message):
    """The key is gone, every version of it."""

    name: str
    deleted: bool


class ExportKeyRequest(_Message):
    """Export secret keys of an exportable key (all versions, or one)."""

    name: KeyName
    version: Version | None = None


class ExportKeyResult(_Message):
    """Secret keys by version."""

    name: str
    type: str
    secret_keys: dict[int, Base64Bytes]


class KeyBackup(_Message):
    """An opaque backup of a key, encrypted under the service's key-encryption key."""

    name: str
    backup: Base64Bytes


class RestoreKeyRequest(_Message):
    """Restore a backup, under its own name or ``name``; ``force`` replaces an existing key."""

    backup: Base64Bytes
    name: KeyName | None = None
    force: bool = False


class KeyDecapsulateRequest(_Message):
    """Decapsulate with a managed KEM key (its latest version unless ``version``)."""

    name: KeyName
    ciphertext: Base64Bytes
    version: Version | None = None


class KeyDecapsulateResult(_Message):
    """The shared secret, and the version that produced it."""

    shared_secret: Base64Bytes
    version: int


class KeySignRequest(_Message):
    """Sign with a managed signature key (its latest version unless ``version``).

    ``context`` is the FIPS 204 context string (default empty); verify needs the same one.
    """

    name: KeyName
    message: Base64Bytes
    version: Version | None = None
    context: SignatureContext = b""


class KeySignResult(_Message):
    """The signature and the version that made it."""

    signature: Base64Bytes
    version: int


class KeyVerifyRequest(_Message):
    """Verify with a managed signature key's public key, under ``context`` (default empty)."""

    name: KeyName
    message: Base64Bytes
    signature: Base64Bytes
    version: Version | None = None
    context: SignatureContext = b""


class EncryptRequest(_Message):
    """KEM-DEM encryption under a managed KEM key's latest version."""

    name: KeyName
    plaintext: Base64Bytes
    associated_data: Base64Bytes | None = None


class EncryptResult(_Message):
    """``x0:v<version>:<base64url>``."""

    ciphertext: str = Field(examples=["x0:v1:AAEC..."])
    version: int


class DecryptRequest(_Message):
    """Decrypt an ``x0:v<version>:`` ciphertext."""

    name: KeyName
    ciphertext: str = Field(max_length=1_500_000)
    associated_data: Base64Bytes | None = None


class DecryptResult(_Message):
    """The plaintext."""

    plaintext: Base64Bytes


class RewrapRequest(_Message):
    """Re-encrypt a ciphertext under the latest version, never revealing the plaintext."""

    name: KeyName
    ciphertext: str = Field(max_length=1_500_000)
    associated_data: Base64Bytes | None = None
