"""Key backups: every setting and version of one key, encrypted as a whole under the KEK.

Blob format::

    0x01 || nonce (12 bytes) || AES-256-GCM(KEK, nonce, document, aad=b"x0tta6bl4/backup/v1")

for a key of the ``default`` tenant (and every backup made before tenants existed);
a key of another tenant is backed up in format ``0x02``, bound to its tenant::

    0x02 || nonce || AES-256-GCM(KEK, nonce, document,
                                 aad=b"x0tta6bl4/backup/v2" || 0x00 || tenant)

A backup restores only into the tenant it was made in: a blob of another tenant does
not open (``InvalidBackup``), so holding another tenant's backup gives nothing.

``document`` is UTF-8 JSON of :class:`BackupDocument` (binary fields base64url)::

    {"format": "x0tta6bl4/backup/v1", "name": "...", "type": "X-Wing",
     "exportable": false, "deletion_allowed": false, "auto_rotate_period_seconds": null,
     "min_decryption_version": 1, "latest_version": 2, "created_at": "<ISO 8601>",
     "versions": [{"version": 1, "public_key": "...", "secret_key": "...",
                   "created_at": "<ISO 8601>"}, ...]}

Secret keys are in the storage form of ``x0_crypto.domain``'s table. The blob opens
only with the KEK that made it (this deployment's), so unlike Vault's plaintext
backups it may be taken of non-exportable keys: it lets a key move between this
service's databases, never out of the service.

Restoring validates before anything is written: authentication, the document's
schema, versions exactly 1..latest, lengths per algorithm, and that every secret
key belongs to its public key (a KEM round trip, or a signature that verifies).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from x0_common.events.binary import Base64Bytes
from x0_common.events.names import KeyName
from x0_common.principal import DEFAULT_TENANT
from x0_crypto.domain.algorithms import Kind
from x0_crypto.domain.registry import Registry
from x0_crypto.errors import CryptoError, InvalidBackup

FORMAT: Final = "x0tta6bl4/backup/v1"
_AAD = FORMAT.encode()
_AAD_V2 = b"x0tta6bl4/backup/v2\x00"
_VERSION_BYTE = 0x01
_TENANT_VERSION_BYTE = 0x02
_NONCE = 12
_TAG = 16
_PROBE = b"x0tta6bl4/backup/v1 restore check"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class BackupVersion(_Strict):
    """One version, secret key included."""

    version: int = Field(ge=1)
    public_key: Base64Bytes
    secret_key: Base64Bytes
    created_at: datetime


class BackupDocument(_Strict):
    """What a backup holds: the key's settings and versions."""

    format: Literal["x0tta6bl4/backup/v1"] = "x0tta6bl4/backup/v1"
    name: KeyName
    type: str
    exportable: bool
    deletion_allowed: bool
    auto_rotate_period_seconds: int | None = Field(ge=1)
    min_decryption_version: int = Field(ge=1)
    latest_version: int = Field(ge=1)
    created_at: datetime
    versions: list[BackupVersion] = Field(min_length=1)

    def __repr__(self) -> str:
        # Never let a stray log or traceback print the secret keys.
        return (
            f"BackupDocument(name={self.name!r}, type={self.type!r}, versions={len(self.versions)})"
        )

    __str__ = __repr__


def _bound(tenant: str) -> tuple[int, bytes]:
    """The version byte and associated data of a backup of ``tenant``'s key."""
    if tenant == DEFAULT_TENANT:
        return _VERSION_BYTE, _AAD
    return _TENANT_VERSION_BYTE, _AAD_V2 + tenant.encode()


def encrypt_backup(kek: bytes, document: BackupDocument, tenant: str = DEFAULT_TENANT) -> bytes:
    """The opaque blob for ``document``, a key of ``tenant``."""
    version, aad = _bound(tenant)
    nonce = os.urandom(_NONCE)
    body = AESGCM(kek).encrypt(nonce, document.model_dump_json().encode(), aad)
    return bytes([version]) + nonce + body


def decrypt_backup(kek: bytes, blob: bytes, tenant: str = DEFAULT_TENANT) -> BackupDocument:
    """The document in ``blob``, made in ``tenant``; :class:`InvalidBackup` if it fails to
    open (tampered, another KEK, another tenant) or parse."""
    version, aad = _bound(tenant)
    if len(blob) < 1 + _NONCE + _TAG or blob[0] != version:
        raise InvalidBackup("not an x0tta6bl4 backup of this tenant")
    try:
        plain = AESGCM(kek).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
    except InvalidTag:
        raise InvalidBackup("authentication failed (tampered, or made under another KEK)") from None
    try:
        return BackupDocument.model_validate_json(plain)
    except ValidationError:
        # Reached only with a blob this KEK sealed: a bug or an incompatible writer.
        raise InvalidBackup("the document does not match the backup schema") from None


def validate(document: BackupDocument, registry: Registry) -> None:
    """:class:`InvalidBackup` unless the document describes a usable key."""
    if document.type not in registry.names():
        raise InvalidBackup(f"unknown key type {document.type!r}")
    numbers = [version.version for version in document.versions]
    if numbers != list(range(1, document.latest_version + 1)):
        raise InvalidBackup("versions must be exactly 1..latest_version, in order")
    if document.min_decryption_version > document.latest_version:
        raise InvalidBackup("min_decryption_version is above latest_version")
    for version in document.versions:
        try:
            matches = _belongs(registry, document.type, version)
        except CryptoError:
            # Wrong lengths or keys the standard rejects; the cause stays unnamed on purpose.
            matches = False
        if not matches:
            raise InvalidBackup(f"version {version.version} holds an unusable key pair")


def _belongs(registry: Registry, key_type: str, version: BackupVersion) -> bool:
    if registry.kind(key_type) is Kind.KEM:
        kem = registry.kem(key_type)
        ciphertext, shared = kem.encapsulate(version.public_key)
        return kem.decapsulate(version.secret_key, ciphertext) == shared
    scheme = registry.signature(key_type)
    signature = scheme.sign(version.secret_key, _PROBE)
    return scheme.verify(version.public_key, _PROBE, signature)
