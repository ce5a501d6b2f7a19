"""``/v1/crypto/...``: post-quantum KEMs and signatures, managed keys, the mesh handshake."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from x0_common.events import crypto as c
from x0_gateway.deps import RequesterDep, SettingsDep
from x0_gateway.forwarding import PROBLEM_RESPONSES, KeyNamePath, forward, forward_named

T = c.CryptoTypes
router = APIRouter(prefix="/v1/crypto", tags=["crypto"])


@router.get(
    "/algorithms",
    response_model=c.AlgorithmsResult,
    responses=PROBLEM_RESPONSES,
    summary="Every algorithm with its backend and key, ciphertext and signature sizes",
)
async def algorithms(requester: RequesterDep, settings: SettingsDep) -> c.AlgorithmsResult:
    """What this deployment's crypto workers offer."""
    result = await requester.request(
        c.TOPIC, T.ALGORITHMS, c.AlgorithmsRequest(), timeout=settings.request_timeout_seconds
    )
    return c.AlgorithmsResult.model_validate(result)


# (path, x0-type, request model, result model, summary); stateless first: caller holds keys.
BODY_ROUTES: list[tuple[str, str, type[BaseModel], type[BaseModel], str]] = [
    ("/kem/keypair", T.KEM_KEYPAIR, c.KemKeypairRequest, c.KeypairResult, "New KEM key pair"),
    (
        "/kem/keypair/batch",
        T.KEM_KEYPAIR_BATCH,
        c.KemKeypairBatchRequest,
        c.KeypairBatchResult,
        "Up to 256 KEM key pairs",
    ),
    (
        "/kem/encapsulate",
        T.ENCAPSULATE,
        c.EncapsulateRequest,
        c.EncapsulateResult,
        "Encapsulate a shared secret to a public key",
    ),
    (
        "/kem/encapsulate/batch",
        T.ENCAPSULATE_BATCH,
        c.EncapsulateBatchRequest,
        c.EncapsulateBatchResult,
        "Up to 256 encapsulations, each with its own outcome",
    ),
    (
        "/kem/decapsulate",
        T.DECAPSULATE,
        c.DecapsulateRequest,
        c.DecapsulateResult,
        "Recover the shared secret from a ciphertext",
    ),
    (
        "/kem/decapsulate/batch",
        T.DECAPSULATE_BATCH,
        c.DecapsulateBatchRequest,
        c.DecapsulateBatchResult,
        "Up to 256 decapsulations, each with its own outcome",
    ),
    (
        "/signatures/keypair",
        T.SIGNATURE_KEYPAIR,
        c.SignatureKeypairRequest,
        c.KeypairResult,
        "New signature key pair",
    ),
    (
        "/signatures/keypair/batch",
        T.SIGNATURE_KEYPAIR_BATCH,
        c.SignatureKeypairBatchRequest,
        c.KeypairBatchResult,
        "Up to 256 signature key pairs",
    ),
    ("/signatures/sign", T.SIGN, c.SignRequest, c.SignResult, "Sign a message"),
    (
        "/signatures/sign/batch",
        T.SIGN_BATCH,
        c.SignBatchRequest,
        c.SignBatchResult,
        "Up to 256 signatures, each with its own outcome",
    ),
    (
        "/signatures/verify",
        T.VERIFY,
        c.VerifyRequest,
        c.VerifyResult,
        "Verify a signature (an invalid one is `valid: false`, not an error)",
    ),
    (
        "/signatures/verify/batch",
        T.VERIFY_BATCH,
        c.VerifyBatchRequest,
        c.VerifyBatchResult,
        "Up to 256 verifications, each with its own outcome",
    ),
    # Managed keys and the mesh, whose bodies name their keys.
    ("/keys", T.KEY_CREATE, c.CreateKeyRequest, c.KeyInfo, "Create a managed key"),
    (
        "/keys/restore",
        T.KEY_RESTORE,
        c.RestoreKeyRequest,
        c.KeyInfo,
        "Restore a key from its encrypted backup",
    ),
    (
        "/sessions",
        T.SESSION_INITIATE,
        c.SessionInitiateRequest,
        c.SessionInitiateResult,
        "Node A opens a session to node B's managed X-Wing key",
    ),
    (
        "/sessions/accept",
        T.SESSION_ACCEPT,
        c.SessionAcceptRequest,
        c.SessionAcceptResult,
        "Node B completes a session: the same directional keys as A's",
    ),
    (
        "/beacons/sign",
        T.BEACON_SIGN,
        c.BeaconSignRequest,
        c.SignedBeacon,
        "Sign a fresh beacon with a node's managed ML-DSA-65 key",
    ),
    (
        "/beacons/verify",
        T.BEACON_VERIFY,
        c.BeaconVerifyRequest,
        c.BeaconVerifyResult,
        "Verify a beacon: signature, time window, replay, key pinning",
    ),
]
for path, message_type, request_model, result_model, summary in BODY_ROUTES:
    forward(
        router,
        path,
        topic=c.TOPIC,
        message_type=message_type,
        request_model=request_model,
        result_model=result_model,
        summary=summary,
        status_code=201 if message_type == T.KEY_CREATE else 200,
    )


@router.get(
    "/keys",
    response_model=c.ListKeysResult,
    responses=PROBLEM_RESPONSES,
    summary="Names of every managed key",
)
async def list_keys(requester: RequesterDep, settings: SettingsDep) -> c.ListKeysResult:
    """Every managed key's name."""
    result = await requester.request(
        c.TOPIC, T.KEY_LIST, c.ListKeysRequest(), timeout=settings.request_timeout_seconds
    )
    return c.ListKeysResult.model_validate(result)


@router.get(
    "/keys/{name}/export",
    response_model=c.ExportKeyResult,
    responses=PROBLEM_RESPONSES,
    summary="Secret keys of an exportable key (409 when it is not exportable)",
)
async def export_key(
    name: KeyNamePath,
    requester: RequesterDep,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> c.ExportKeyResult:
    """All versions, or one."""
    result = await requester.request(
        c.TOPIC,
        T.KEY_EXPORT,
        c.ExportKeyRequest(name=name, version=version),
        timeout=settings.request_timeout_seconds,
    )
    return c.ExportKeyResult.model_validate(result)


# (method, path with {name}, x0-type, request model, result model, summary)
NAMED_ROUTES: list[tuple[str, str, str, type[BaseModel], type[BaseModel], str]] = [
    (
        "GET",
        "/keys/{name}",
        T.KEY_READ,
        c.KeyNameRequest,
        c.KeyInfo,
        "A key's settings and its public key per version",
    ),
    (
        "POST",
        "/keys/{name}/rotate",
        T.KEY_ROTATE,
        c.KeyNameRequest,
        c.KeyInfo,
        "Add a version; new operations use it",
    ),
    (
        "PATCH",
        "/keys/{name}/config",
        T.KEY_CONFIG,
        c.UpdateKeyConfigRequest,
        c.KeyInfo,
        "Change min_decryption_version, deletion_allowed, exportable or auto-rotation",
    ),
    (
        "DELETE",
        "/keys/{name}",
        T.KEY_DELETE,
        c.KeyNameRequest,
        c.DeleteKeyResult,
        "Delete a key (only when deletion_allowed)",
    ),
    (
        "GET",
        "/keys/{name}/backup",
        T.KEY_BACKUP,
        c.KeyNameRequest,
        c.KeyBackup,
        "The key as an encrypted blob",
    ),
    (
        "POST",
        "/keys/{name}/decapsulate",
        T.KEY_DECAPSULATE,
        c.KeyDecapsulateRequest,
        c.KeyDecapsulateResult,
        "Decapsulate with a managed KEM key",
    ),
    (
        "POST",
        "/keys/{name}/sign",
        T.KEY_SIGN,
        c.KeySignRequest,
        c.KeySignResult,
        "Sign with a managed signature key",
    ),
    (
        "POST",
        "/keys/{name}/verify",
        T.KEY_VERIFY,
        c.KeyVerifyRequest,
        c.VerifyResult,
        "Verify with a managed signature key",
    ),
    (
        "POST",
        "/keys/{name}/encrypt",
        T.KEY_ENCRYPT,
        c.EncryptRequest,
        c.EncryptResult,
        "KEM-DEM encryption: ML-KEM or X-Wing, HKDF-SHA256, AES-256-GCM",
    ),
    (
        "POST",
        "/keys/{name}/decrypt",
        T.KEY_DECRYPT,
        c.DecryptRequest,
        c.DecryptResult,
        "Decrypt an x0:v<version>: ciphertext",
    ),
    (
        "POST",
        "/keys/{name}/rewrap",
        T.KEY_REWRAP,
        c.RewrapRequest,
        c.EncryptResult,
        "Re-encrypt under the latest version without revealing the plaintext",
    ),
]
for method, path, message_type, request_model, result_model, summary in NAMED_ROUTES:
    forward_named(
        router,
        method,
        path,
        topic=c.TOPIC,
        message_type=message_type,
        request_model=request_model,
        result_model=result_model,
        summary=summary,
    )
