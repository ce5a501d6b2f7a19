"""Managed-key rules without storage: versions, retirement, settings, backup blobs."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from x0_common.errors import Conflict, InvalidInput, NotFound
from x0_crypto.domain import Kind, Registry
from x0_crypto.domain.backup import (
    BackupDocument,
    BackupVersion,
    decrypt_backup,
    encrypt_backup,
    validate,
)
from x0_crypto.domain.managed import ConfigChange, KeySettings, KeyVersion, ManagedKey
from x0_crypto.errors import (
    InvalidBackup,
    InvalidKeyConfig,
    KeyNotFound,
    OperationNotAllowed,
    UnsupportedOperation,
    VersionNotUsable,
)

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
KEK = os.urandom(32)


def _key(latest: int = 3, floor: int = 1, *, exportable: bool = False) -> ManagedKey:
    return ManagedKey(
        name="k",
        type="ML-KEM-768",
        settings=KeySettings(exportable=exportable, min_decryption_version=floor),
        latest_version=latest,
        created_at=NOW,
        updated_at=NOW,
        versions=tuple(KeyVersion(v, bytes([v]), NOW) for v in range(1, latest + 1)),
    )


def test_errors_are_also_the_shared_classes() -> None:
    """Code written against x0_common.errors (the mesh handlers) catches these."""
    assert issubclass(KeyNotFound, NotFound)
    assert issubclass(OperationNotAllowed, Conflict)
    assert issubclass(VersionNotUsable, InvalidInput)
    assert KeyNotFound("k").code == "not_found"


def test_versions_and_retirement() -> None:
    key = _key(latest=3, floor=2)
    assert key.usable(None).version == 3
    assert key.usable(2).version == 2
    with pytest.raises(VersionNotUsable) as too_old:
        key.usable(1)
    assert too_old.value.details["reason"] == "version_too_old"
    with pytest.raises(KeyNotFound):
        key.usable(4)
    with pytest.raises(VersionNotUsable) as unknown:
        key.usable_for_ciphertext(4)
    assert unknown.value.details["reason"] == "unknown_version"
    with pytest.raises(VersionNotUsable):
        key.usable_for_ciphertext(1)


def test_kind_checks() -> None:
    key = _key()
    key.require_kind(Kind.KEM, "encrypt")
    with pytest.raises(UnsupportedOperation) as caught:
        key.require_kind(Kind.SIGNATURE, "sign")
    assert caught.value.http_status == 400


def test_config_changes() -> None:
    key = _key(latest=3)
    assert ConfigChange(min_decryption_version=3).apply(key).min_decryption_version == 3
    for bad in (
        ConfigChange(min_decryption_version=4),
        ConfigChange(auto_rotate_period_seconds=59),
    ):
        with pytest.raises(InvalidKeyConfig):
            bad.apply(key)
    assert ConfigChange(auto_rotate_period_seconds=60).apply(key).auto_rotate_period_seconds == 60
    assert ConfigChange(auto_rotate_period_seconds=0).apply(key).auto_rotate_period_seconds is None
    unchanged = ConfigChange().apply(key)
    assert unchanged == key.settings
    exportable = _key(exportable=True)
    with pytest.raises(OperationNotAllowed):
        ConfigChange(exportable=False).apply(exportable)
    with pytest.raises(OperationNotAllowed):
        _key().require_exportable()


def _document(registry: Registry, key_type: str, versions: int = 2) -> BackupDocument:
    backend = (
        registry.kem(key_type)
        if registry.kind(key_type) is Kind.KEM
        else registry.signature(key_type)
    )
    pairs = [backend.keypair() for _ in range(versions)]
    return BackupDocument(
        name="k",
        type=key_type,
        exportable=False,
        deletion_allowed=True,
        auto_rotate_period_seconds=None,
        min_decryption_version=1,
        latest_version=versions,
        created_at=NOW,
        versions=[
            BackupVersion(version=i + 1, public_key=pk, secret_key=sk, created_at=NOW)
            for i, (pk, sk) in enumerate(pairs)
        ],
    )


@pytest.mark.parametrize("key_type", ["X-Wing", "ML-KEM-512", "ML-DSA-44", "Ed25519+ML-DSA-65"])
def test_backup_round_trip_and_validation(registry: Registry, key_type: str) -> None:
    document = _document(registry, key_type)
    blob = encrypt_backup(KEK, document)
    for version in document.versions:
        assert version.secret_key not in blob
    restored = decrypt_backup(KEK, blob)
    assert restored == document
    validate(restored, registry)
    assert "secret" not in repr(restored)


def test_backup_rejects_tampering_and_other_keks(registry: Registry) -> None:
    blob = encrypt_backup(KEK, _document(registry, "ML-KEM-768"))
    for index in (0, 1, 20, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(InvalidBackup):
            decrypt_backup(KEK, bytes(tampered))
    for bad in (b"", blob[:28], blob[:-1]):
        with pytest.raises(InvalidBackup):
            decrypt_backup(KEK, bad)
    with pytest.raises(InvalidBackup):
        decrypt_backup(os.urandom(32), blob)


def test_backup_validation_rejects_inconsistent_documents(registry: Registry) -> None:
    good = _document(registry, "ML-DSA-65", versions=2)
    swapped = good.model_copy(
        update={
            "versions": [
                good.versions[0].model_copy(update={"secret_key": good.versions[1].secret_key}),
                good.versions[1],
            ]
        }
    )
    gap = good.model_copy(update={"versions": [good.versions[1]], "latest_version": 2})
    floor = good.model_copy(update={"min_decryption_version": 3})
    short = good.model_copy(
        update={
            "versions": [good.versions[0].model_copy(update={"public_key": b"x"}), good.versions[1]]
        }
    )
    unknown = good.model_copy(update={"type": "RSA-2048"})
    for document in (swapped, gap, floor, short, unknown):
        with pytest.raises(InvalidBackup):
            validate(document, registry)
