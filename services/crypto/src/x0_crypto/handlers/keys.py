"""Managed keys, lifecycle: create, read, list, rotate, config, delete, export, backup,
restore. The operations that use a key (encrypt, sign...) are in :mod:`.key_use`.

Status per case (codes of ``x0_common.errors``; classes in
:mod:`x0_crypto.errors`), with ``details.reason``:

================================================= ============= ==== ============================
case                                              code          HTTP reason
================================================= ============= ==== ============================
no key by that name (or it is another tenant's)   not_found     404  key_not_found
a request's ``version`` names no version          not_found     404  version_not_found
create: name taken (other or no request id)       conflict      409  key_exists
create: request id already made another key       conflict      409  request_id_reused
restore onto an existing name without ``force``   conflict      409  key_exists
delete without ``deletion_allowed``               conflict      409  deletion_not_allowed
export without ``exportable``                     conflict      409  not_exportable
min_decryption_version not in 1..latest           invalid_input 400  min_decryption_version_...
auto_rotate_period_seconds 1..59                  invalid_input 400  auto_rotate_period_too_short
tampered backup, one made under another KEK or    invalid_input 400  invalid_backup
in another tenant
create/restore of a new name past the quota       quota_exceeded 403 quota_exceeded
database unreachable (retried by the responder)   unavailable   503  postgres
a stored secret key fails its integrity check     internal      500  sealed_key_corrupt
delete of a key that does not exist               (success)     200  ``deleted: false``
================================================= ============= ==== ============================

409 where the key's settings refuse a well-formed request (changing the setting makes
it succeed); Vault answers 400 there.

Keys belong to the caller's tenant (``context.tenant``): the handlers bind the
keystore to it, so the same name in two tenants is two keys, and another tenant's key
is a 404 (its existence does not leak).

Create is idempotent by ``request_id``; without one, by the message's correlation id,
so a redelivered create (worker crash before its reply) answers with the key it made
instead of a 409. Delete is idempotent too (``deleted: false`` the second time).
"""

from __future__ import annotations

import logging

from x0_common.contract import Crypto
from x0_common.events.crypto import (
    CreateKeyRequest,
    DeleteKeyResult,
    ExportKeyRequest,
    ExportKeyResult,
    KeyBackup,
    KeyInfo,
    KeyNameRequest,
    KeyVersionInfo,
    ListKeysRequest,
    ListKeysResult,
    RestoreKeyRequest,
    UpdateKeyConfigRequest,
)
from x0_common.kafka import RequestContext, Responder
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain.managed import ConfigChange, KeySettings, ManagedKey
from x0_crypto.handlers import key_use
from x0_crypto.handlers.key_common import counted
from x0_crypto.metrics import SERVICE

logger = logging.getLogger(__name__)

# Request ids a caller chose and those derived from correlation ids never collide.
CORRELATION_PREFIX = "x0-correlation:"


def key_info(key: ManagedKey) -> KeyInfo:
    """The reply model of a key: settings and every version's public key."""
    return KeyInfo(
        name=key.name,
        type=key.type,
        exportable=key.settings.exportable,
        deletion_allowed=key.settings.deletion_allowed,
        auto_rotate_period_seconds=key.settings.auto_rotate_period_seconds,
        latest_version=key.latest_version,
        min_decryption_version=key.settings.min_decryption_version,
        created_at=key.created_at,
        versions=[
            KeyVersionInfo(version=v.version, public_key=v.public_key, created_at=v.created_at)
            for v in key.versions
        ],
    )


def register(responder: Responder, deps: CryptoDeps) -> None:
    """Register every ``Crypto.KEY_.message_type*`` operation."""
    metrics = deps.metrics

    async def refresh_gauge() -> None:
        metrics.managed_keys.labels(SERVICE).set(await deps.keystore.count_all())

    @responder.operation(Crypto.KEY_CREATE)
    async def on_create(request: CreateKeyRequest, context: RequestContext) -> KeyInfo:
        request_id = request.request_id or CORRELATION_PREFIX + context.correlation_id
        settings = KeySettings(
            exportable=request.exportable,
            deletion_allowed=request.deletion_allowed,
            auto_rotate_period_seconds=request.auto_rotate_period_seconds,
        )
        with counted(metrics, "create"):
            key, created = await deps.keystore.of(context.tenant).create(
                request.name, request.type, settings, request_id
            )
        if created:
            logger.info("managed key created", extra={"key_name": key.name, "key_type": key.type})
            await refresh_gauge()
        return key_info(key)

    @responder.operation(Crypto.KEY_READ)
    async def on_read(request: KeyNameRequest, context: RequestContext) -> KeyInfo:
        with counted(metrics, "read"):
            return key_info(await deps.keystore.of(context.tenant).read(request.name))

    @responder.operation(Crypto.KEY_LIST)
    async def on_list(_: ListKeysRequest, context: RequestContext) -> ListKeysResult:
        with counted(metrics, "list"):
            return ListKeysResult(names=await deps.keystore.of(context.tenant).names())

    @responder.operation(Crypto.KEY_ROTATE)
    async def on_rotate(request: KeyNameRequest, context: RequestContext) -> KeyInfo:
        # Idempotent by the message: a redelivered rotation adds no second version.
        request_id = CORRELATION_PREFIX + context.correlation_id
        with counted(metrics, "rotate"):
            key, rotated = await deps.keystore.of(context.tenant).rotate_once(
                request.name, request_id
            )
        if rotated:
            metrics.rotations.labels(SERVICE, "manual").inc()
        return key_info(key)

    @responder.operation(Crypto.KEY_CONFIG)
    async def on_config(request: UpdateKeyConfigRequest, context: RequestContext) -> KeyInfo:
        change = ConfigChange(
            min_decryption_version=request.min_decryption_version,
            deletion_allowed=request.deletion_allowed,
            exportable=request.exportable,
            auto_rotate_period_seconds=request.auto_rotate_period_seconds,
        )
        with counted(metrics, "config"):
            return key_info(await deps.keystore.of(context.tenant).configure(request.name, change))

    @responder.operation(Crypto.KEY_DELETE)
    async def on_delete(request: KeyNameRequest, context: RequestContext) -> DeleteKeyResult:
        with counted(metrics, "delete"):
            deleted = await deps.keystore.of(context.tenant).delete(request.name)
        if deleted:
            await refresh_gauge()
        return DeleteKeyResult(name=request.name, deleted=deleted)

    @responder.operation(Crypto.KEY_EXPORT)
    async def on_export(request: ExportKeyRequest, context: RequestContext) -> ExportKeyResult:
        with counted(metrics, "export"):
            key, secret_keys = await deps.backups.of(context.tenant).export(
                request.name, request.version
            )
        logger.info("managed key exported", extra={"key_name": key.name})
        return ExportKeyResult(name=key.name, type=key.type, secret_keys=secret_keys)

    @responder.operation(Crypto.KEY_BACKUP)
    async def on_backup(request: KeyNameRequest, context: RequestContext) -> KeyBackup:
        with counted(metrics, "backup"):
            blob = await deps.backups.of(context.tenant).backup(request.name)
        return KeyBackup(name=request.name, backup=blob)

    @responder.operation(Crypto.KEY_RESTORE)
    async def on_restore(request: RestoreKeyRequest, context: RequestContext) -> KeyInfo:
        with counted(metrics, "restore"):
            key = await deps.backups.of(context.tenant).restore(
                request.backup, request.name, force=request.force
            )
        await refresh_gauge()
        return key_info(key)

    key_use.register(responder, deps)
