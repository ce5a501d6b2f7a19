"""The crypto service's topic and ``x0-type`` names (``<area>.<operation>.v<n>``)."""

from __future__ import annotations

from typing import Final

TOPIC: Final = "x0.crypto.requests"


class CryptoTypes:
    """``x0-type`` header values of crypto requests."""

    ALGORITHMS: Final = "crypto.algorithms.list.v1"
    KEM_KEYPAIR: Final = "crypto.kem.keypair.v1"
    KEM_KEYPAIR_BATCH: Final = "crypto.kem.keypair.batch.v1"
    ENCAPSULATE: Final = "crypto.kem.encapsulate.v1"
    ENCAPSULATE_BATCH: Final = "crypto.kem.encapsulate.batch.v1"
    DECAPSULATE: Final = "crypto.kem.decapsulate.v1"
    DECAPSULATE_BATCH: Final = "crypto.kem.decapsulate.batch.v1"
    SIGNATURE_KEYPAIR: Final = "crypto.signature.keypair.v1"
    SIGNATURE_KEYPAIR_BATCH: Final = "crypto.signature.keypair.batch.v1"
    SIGN: Final = "crypto.signature.sign.v1"
    SIGN_BATCH: Final = "crypto.signature.sign.batch.v1"
    VERIFY: Final = "crypto.signature.verify.v1"
    VERIFY_BATCH: Final = "crypto.signature.verify.batch.v1"

    KEY_CREATE: Final = "crypto.keys.create.v1"
    KEY_READ: Final = "crypto.keys.read.v1"
    KEY_LIST: Final = "crypto.keys.list.v1"
    KEY_ROTATE: Final = "crypto.keys.rotate.v1"
    KEY_CONFIG: Final = "crypto.keys.config.v1"
    KEY_DELETE: Final = "crypto.keys.delete.v1"
    KEY_EXPORT: Final = "crypto.keys.export.v1"
    KEY_BACKUP: Final = "crypto.keys.backup.v1"
    KEY_RESTORE: Final = "crypto.keys.restore.v1"
    KEY_DECAPSULATE: Final = "crypto.keys.decapsulate.v1"
    KEY_SIGN: Final = "crypto.keys.sign.v1"
    KEY_VERIFY: Final = "crypto.keys.verify.v1"
    KEY_ENCRYPT: Final = "crypto.keys.encrypt.v1"
    KEY_DECRYPT: Final = "crypto.keys.decrypt.v1"
    KEY_REWRAP: Final = "crypto.keys.rewrap.v1"

    SESSION_INITIATE: Final = "crypto.session.initiate.v1"
    SESSION_ACCEPT: Final = "crypto.session.accept.v1"
    BEACON_SIGN: Final = "crypto.beacon.sign.v1"
    BEACON_VERIFY: Final = "crypto.beacon.verify.v1"
