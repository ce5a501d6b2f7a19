"""Managed keys as the domain sees them: records, settings, and the rules on versions.

A key has a type (one of the registry's algorithms), settings, and versions 1..latest;
encryption and signing use the latest version unless told otherwise. Versions below
``min_decryption_version`` are retired: decrypt, rewrap, decapsulate, sign and verify
refuse them (Vault's Transit applies its floor the same way to decryption and
verification; with one floor instead of Vault's two, signing follows it too).
Retired versions keep their rows, so lowering the floor brings them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from x0_crypto.domain.algorithms import ALL_ALGORITHMS, KEM_ALGORITHMS, Kind
from x0_crypto.errors import (
    InvalidKeyConfig,
    KeyNotFound,
    OperationNotAllowed,
    UnknownAlgorithm,
    UnsupportedOperation,
    VersionNotUsable,
)

# The contract's floor for a rotation period; a shorter one would rotate on every sweep.
MIN_AUTO_ROTATE_SECONDS = 60


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One version's public key (its secret key stays sealed in the store)."""

    version: int
    public_key: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeySettings:
    """What a caller chooses about a key; ``auto_rotate_period_seconds=None``: never."""

    exportable: bool = False
    deletion_allowed: bool = False
    auto_rotate_period_seconds: int | None = None
    min_decryption_version: int = 1


@dataclass(frozen=True, slots=True)
class ManagedKey:
    """A stored key: name, type, settings and every version's public key, oldest first."""

    name: str
    type: str
    settings: KeySettings
    latest_version: int
    created_at: datetime
    updated_at: datetime
    versions: tuple[KeyVersion, ...] = field(default=())

    @property
    def kind(self) -> Kind:
        """KEM or signature, from the type."""
        return Kind.KEM if self.type in KEM_ALGORITHMS else Kind.SIGNATURE

    def require_kind(self, kind: Kind, operation: str) -> None:
        """:class:`UnsupportedOperation` unless the key is a ``kind`` key."""
        if self.kind is not kind:
            raise UnsupportedOperation(self.name, self.type, operation)

    def version(self, version: int) -> KeyVersion:
        """The version's record; :class:`KeyNotFound` if it does not exist."""
        for candidate in self.versions:
            if candidate.version == version:
                return candidate
        raise KeyNotFound(self.name, version)

    def usable(self, requested: int | None) -> KeyVersion:
        """The version a request names (latest when ``None``), if not retired.

        A version the request names that does not exist is 404; a retired one 400.
        """
        found = self.version(self.latest_version if requested is None else requested)
        self._not_retired(found.version)
        return found

    def usable_for_ciphertext(self, version: int) -> KeyVersion:
        """The version a ciphertext names; both failures are the ciphertext's fault (400)."""
        if not any(candidate.version == version for candidate in self.versions):
            raise VersionNotUsable(
                f"ciphertext names version {version}, key {self.name!r} has none",
                reason="unknown_version",
                name=self.name,
                version=version,
            )
        self._not_retired(version)
        return self.version(version)

    def require_exportable(self) -> None:
        """:class:`OperationNotAllowed` unless the key was created or made exportable."""
        if not self.settings.exportable:
            raise OperationNotAllowed(
                f"key {self.name!r} is not exportable", reason="not_exportable", name=self.name
            )

    def _not_retired(self, version: int) -> None:
        floor = self.settings.min_decryption_version
        if version < floor:
            raise VersionNotUsable(
                f"key {self.name!r} version {version} is below min_decryption_version {floor}",
                reason="version_too_old",
                name=self.name,
                version=version,
                min_decryption_version=floor,
            )


def check_type(key_type: str) -> None:
    """:class:`UnknownAlgorithm` unless ``key_type`` is an algorithm the service offers."""
    if key_type not in ALL_ALGORITHMS:
        raise UnknownAlgorithm(key_type, known=ALL_ALGORITHMS)


def check_period(period: int | None) -> None:
    """:class:`InvalidKeyConfig` for a rotation period below the floor."""
    if period is not None and period < MIN_AUTO_ROTATE_SECONDS:
        raise InvalidKeyConfig(
            f"auto_rotate_period_seconds must be 0 (off) or at least {MIN_AUTO_ROTATE_SECONDS}",
            reason="auto_rotate_period_too_short",
            minimum=MIN_AUTO_ROTATE_SECONDS,
        )


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """Settings to change; ``None`` leaves one as it is. A period of 0 turns rotation off."""

    min_decryption_version: int | None = None
    deletion_allowed: bool | None = None
    exportable: bool | None = None
    auto_rotate_period_seconds: int | None = None

    def apply(self, key: ManagedKey) -> KeySettings:
        """The key's settings after this change, or the error that refuses it."""
        current = key.settings
        if self.exportable is False and current.exportable:
            # Vault's rule: once a key could leave, making it non-exportable protects nothing.
            raise OperationNotAllowed(
                f"key {key.name!r} is exportable and cannot be made non-exportable",
                reason="exportable_is_permanent",
                name=key.name,
            )
        floor = current.min_decryption_version
        if self.min_decryption_version is not None:
            floor = self.min_decryption_version
            if not 1 <= floor <= key.latest_version:
                raise InvalidKeyConfig(
                    f"min_decryption_version must be between 1 and {key.latest_version}",
                    reason="min_decryption_version_out_of_range",
                    latest_version=key.latest_version,
                )
        period = current.auto_rotate_period_seconds
        if self.auto_rotate_period_seconds is not None:
            period = self.auto_rotate_period_seconds or None
            check_period(period)
        return KeySettings(
            exportable=current.exportable if self.exportable is None else self.exportable,
            deletion_allowed=(
                current.deletion_allowed if self.deletion_allowed is None else self.deletion_allowed
            ),
            auto_rotate_period_seconds=period,
            min_decryption_version=floor,
        )
