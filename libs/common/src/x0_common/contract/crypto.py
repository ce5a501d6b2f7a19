"""The crypto service's operations (topic ``x0.crypto.requests``, request/reply).

Stateless operations need the ``crypto`` scope: the caller holds the keys. Managed
keys (HashiCorp Vault's Transit engine is the model) split reading, writing, using,
exporting and administering, so that a node that only signs cannot export.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from x0_common.contract.operation import Http, Operation
from x0_common.contract.table import Table
from x0_common.errors import Conflict, InvalidInput, NotFound
from x0_common.events import crypto as c

TOPIC: Final = c.TOPIC
_V1: Final = "/v1/crypto"
# Errors of an operation that takes keys and ciphertexts: malformed ones are 400.
_USES_INPUT = (InvalidInput,)
_NAMES_KEY = (NotFound,)
_USES_KEY = (NotFound, InvalidInput)


def _stateless(  # noqa: PLR0917 - one row, read in the table's column order
    name: str,
    message_type: str,
    path: str,
    request: type[BaseModel],
    result: type[BaseModel],
    summary: str,
) -> Operation:
    return Operation(
        name=name,
        message_type=message_type,
        topic=TOPIC,
        request=request,
        result=result,
        summary=summary,
        scope="crypto",
        http=Http("POST", f"{_V1}{path}"),
        errors=_USES_INPUT,
    )


class Crypto(Table):
    """Every crypto operation."""

    ALGORITHMS = Operation(
        name="algorithms",
        message_type="crypto.algorithms.list.v1",
        topic=TOPIC,
        request=c.AlgorithmsRequest,
        result=c.AlgorithmsResult,
        summary="Every algorithm with its backend and key, ciphertext and signature sizes",
        scope="crypto",
        http=Http("GET", f"{_V1}/algorithms"),
    )
    KEM_KEYPAIR = _stateless(
        "kem_keypair",
        "crypto.kem.keypair.v1",
        "/kem/keypair",
        c.KemKeypairRequest,
        c.KeypairResult,
        "New KEM key pair",
    )
    KEM_KEYPAIR_BATCH = _stateless(
        "kem_keypair_batch",
        "crypto.kem.keypair.batch.v1",
        "/kem/keypair/batch",
        c.KemKeypairBatchRequest,
        c.KeypairBatchResult,
        "Up to 256 KEM key pairs",
    )
    ENCAPSULATE = _stateless(
        "kem_encapsulate",
        "crypto.kem.encapsulate.v1",
        "/kem/encapsulate",
        c.EncapsulateRequest,
        c.EncapsulateResult,
        "Encapsulate a shared secret to a public key",
    )
    ENCAPSULATE_BATCH = _stateless(
        "kem_encapsulate_batch",
        "crypto.kem.encapsulate.batch.v1",
        "/kem/encapsulate/batch",
        c.EncapsulateBatchRequest,
        c.EncapsulateBatchResult,
        "Up to 256 encapsulations, each with its own outcome",
    )
    DECAPSULATE = _stateless(
        "kem_decapsulate",
        "crypto.kem.decapsulate.v1",
        "/kem/decapsulate",
        c.DecapsulateRequest,
        c.DecapsulateResult,
        "Recover the shared secret from a ciphertext",
    )
    DECAPSULATE_BATCH = _stateless(
        "kem_decapsulate_batch",
        "crypto.kem.decapsulate.batch.v1",
        "/kem/decapsulate/batch",
        c.DecapsulateBatchRequest,
        c.DecapsulateBatchResult,
        "Up to 256 decapsulations, each with its own outcome",
    )
    SIGNATURE_KEYPAIR = _stateless(
        "signature_keypair",
        "crypto.signature.keypair.v1",
        "/signatures/keypair",
        c.SignatureKeypairRequest,
        c.KeypairResult,
        "New signature key pair",
    )
    SIGNATURE_KEYPAIR_BATCH = _stateless(
        "signature_keypair_batch",
        "crypto.signature.keypair.batch.v1",
        "/signatures/keypair/batch",
        c.SignatureKeypairBatchRequest,
        c.KeypairBatchResult,
        "Up to 256 signature key pairs",
    )
    SIGN = _stateless(
        "sign",
        "crypto.signature.sign.v1",
        "/signatures/sign",
        c.SignRequest,
        c.SignResult,
        "Sign a message",
    )
    SIGN_BATCH = _stateless(
        "sign_batch",
        "crypto.signature.sign.batch.v1",
        "/signatures/sign/batch",
        c.SignBatchRequest,
        c.SignBatchResult,
        "Up to 256 signatures, each with its own outcome",
    )
    VERIFY = _stateless(
        "verify",
        "crypto.signature.verify.v1",
        "/signatures/verify",
        c.VerifyRequest,
        c.VerifyResult,
        "Verify a signature (an invalid one is `valid: false`, not an error)",
    )
    VERIFY_BATCH = _stateless(
        "verify_batch",
        "crypto.signature.verify.batch.v1",
        "/signatures/verify/batch",
        c.VerifyBatchRequest,
        c.VerifyBatchResult,
        "Up to 256 verifications, each with its own outcome",
    )

    # Managed keys: lifecycle.
    KEY_CREATE = Operation(
        name="create_key",
        message_type="crypto.keys.create.v1",
        topic=TOPIC,
        request=c.CreateKeyRequest,
        result=c.KeyInfo,
        summary="Create a managed key",
        scope="keys:write",
        http=Http("POST", f"{_V1}/keys", status=201),
        errors=(Conflict, InvalidInput),
    )
    KEY_LIST = Operation(
        name="list_keys",
        message_type="crypto.keys.list.v1",
        topic=TOPIC,
        request=c.ListKeysRequest,
        result=c.ListKeysResult,
        summary="Names of every managed key",
        scope="keys:read",
        http=Http("GET", f"{_V1}/keys"),
    )
    KEY_READ = Operation(
        name="read_key",
        message_type="crypto.keys.read.v1",
        topic=TOPIC,
        request=c.KeyNameRequest,
        result=c.KeyInfo,
        summary="A key's settings and its public key per version",
        scope="keys:read",
        http=Http("GET", f"{_V1}/keys/{{name}}"),
        errors=_NAMES_KEY,
    )
    KEY_ROTATE = Operation(
        name="rotate_key",
        message_type="crypto.keys.rotate.v1",
        topic=TOPIC,
        request=c.KeyNameRequest,
        result=c.KeyInfo,
        summary="Add a version; new operations use it",
        scope="keys:write",
        http=Http("POST", f"{_V1}/keys/{{name}}/rotate"),
        errors=_NAMES_KEY,
    )
    KEY_CONFIG = Operation(
        name="configure_key",
        message_type="crypto.keys.config.v1",
        topic=TOPIC,
        request=c.UpdateKeyConfigRequest,
        result=c.KeyInfo,
        summary="Change min_decryption_version, deletion_allowed, exportable or auto-rotation",
        scope="keys:admin",
        http=Http("PATCH", f"{_V1}/keys/{{name}}/config"),
        errors=(NotFound, InvalidInput),
    )
    KEY_DELETE = Operation(
        name="delete_key",
        message_type="crypto.keys.delete.v1",
        topic=TOPIC,
        request=c.KeyNameRequest,
        result=c.DeleteKeyResult,
        summary="Delete a key (only when deletion_allowed)",
        scope="keys:admin",
        http=Http("DELETE", f"{_V1}/keys/{{name}}"),
        errors=(Conflict,),
    )
    KEY_EXPORT = Operation(
        name="export_key",
        message_type="crypto.keys.export.v1",
        topic=TOPIC,
        request=c.ExportKeyRequest,
        result=c.ExportKeyResult,
        summary="Secret keys of an exportable key (409 when it is not exportable)",
        scope="keys:export",
        http=Http("GET", f"{_V1}/keys/{{name}}/export"),
        errors=(NotFound, Conflict),
    )
    KEY_BACKUP = Operation(
        name="backup_key",
        message_type="crypto.keys.backup.v1",
        topic=TOPIC,
        request=c.KeyNameRequest,
        result=c.KeyBackup,
        summary="The key as an encrypted blob",
        scope="keys:admin",
        http=Http("GET", f"{_V1}/keys/{{name}}/backup"),
        errors=_NAMES_KEY,
    )
    KEY_RESTORE = Operation(
        name="restore_key",
        message_type="crypto.keys.restore.v1",
        topic=TOPIC,
        request=c.RestoreKeyRequest,
        result=c.KeyInfo,
        summary="Restore a key from its encrypted backup",
        scope="keys:admin",
        http=Http("POST", f"{_V1}/keys/restore"),
        errors=(Conflict, InvalidInput),
    )

    # Managed keys: use. The secret key never leaves the worker.
    KEY_DECAPSULATE = Operation(
        name="key_decapsulate",
        message_type="crypto.keys.decapsulate.v1",
        topic=TOPIC,
        request=c.KeyDecapsulateRequest,
        result=c.KeyDecapsulateResult,
        summary="Decapsulate with a managed KEM key",
        scope="keys:use",
        http=Http("POST", f"{_V1}/keys/{{name}}/decapsulate"),
        errors=_USES_KEY,
    )
    KEY_SIGN = Operation(
        name="key_sign",
        message_type="crypto.keys.sign.v1",
        topic=TOPIC,
        request=c.KeySignRequest,
        result=c.KeySignResult,
        summary="Sign with a managed signature key",
        scope="keys:use",
        http=Http("POST", f"{_V1}/keys/{{name}}/sign"),
        errors=_USES_KEY,
    )
    KEY_VERIFY = Operation(
        name="key_verify",
        message_type="crypto.keys.verify.v1",
        topic=TOPIC,
        request=c.KeyVerifyRequest,
        result=c.VerifyResult,
        summary="Verify with a managed signature key",
        scope="keys:use",
        http=Http("POST", f"{_V1}/keys/{{name}}/verify"),
        errors=_USES_KEY,
    )
    KEY_ENCRYPT = Operation(
        name="key_encrypt",
        message_type="crypto.keys.encrypt.v1",
        topic=TOPIC,
        request=c.EncryptRequest,
        result=c.EncryptResult,
        summary="KEM-DEM encryption: ML-KEM or X-Wing, HKDF-SHA256, AES-256-GCM",
        scope="keys:use",
        http=Http("POST", f"{_V1}/keys/{{name}}/encrypt"),
        errors=_USES_KEY,
    )
    KEY_DECRYPT = Operation(
        name="key_decrypt",
        message_type="crypto.keys.decrypt.v1",
        topic=TOPIC,
        request=c.DecryptRequest,
        result=c.DecryptResult,
        summary="Decrypt an x0:v<version>: ciphertext",
        scope="keys:use",
        http=Http("POST", f"{_V1}/keys/{{name}}/decrypt"),
        errors=_USES_KEY,
    )
    KEY_REWRAP = Operation(
        name="key_rewrap",
        message_type="crypto.keys.rewrap.v1",
        topic=TOPIC,
        request=c.RewrapRequest,
        result=c.EncryptResult,
        summary="Re-encrypt under the latest version without revealing the plaintext",
        scope="keys:use",
        http=Http("POST", f"{_V1}/keys/{{name}}/rewrap"),
        errors=_USES_KEY,
    )

    # The mesh: sessions over nodes' managed X-Wing keys, beacons signed with ML-DSA-65.
    SESSION_INITIATE = Operation(
        name="session_initiate",
        message_type="crypto.session.initiate.v1",
        topic=TOPIC,
        request=c.SessionInitiateRequest,
        result=c.SessionInitiateResult,
        summary="Node A opens a session to node B's managed X-Wing key",
        scope="keys:use",
        http=Http("POST", f"{_V1}/sessions"),
        errors=_USES_KEY,
    )
    SESSION_ACCEPT = Operation(
        name="session_accept",
        message_type="crypto.session.accept.v1",
        topic=TOPIC,
        request=c.SessionAcceptRequest,
        result=c.SessionAcceptResult,
        summary="Node B completes a session: the same directional keys as A's",
        scope="keys:use",
        http=Http("POST", f"{_V1}/sessions/accept"),
        errors=_USES_KEY,
    )
    BEACON_SIGN = Operation(
        name="beacon_sign",
        message_type="crypto.beacon.sign.v1",
        topic=TOPIC,
        request=c.BeaconSignRequest,
        result=c.SignedBeacon,
        summary="Sign a fresh beacon with a node's managed ML-DSA-65 key",
        scope="keys:use",
        http=Http("POST", f"{_V1}/beacons/sign"),
        errors=_USES_KEY,
    )
    BEACON_VERIFY = Operation(
        name="beacon_verify",
        message_type="crypto.beacon.verify.v1",
        topic=TOPIC,
        request=c.BeaconVerifyRequest,
        result=c.BeaconVerifyResult,
        summary="Verify a beacon: signature, time window, replay, key pinning",
        scope="keys:use",
        http=Http("POST", f"{_V1}/beacons/verify"),
        errors=_USES_INPUT,
    )
