"""Managed keys, use: encrypt, decrypt, rewrap, decapsulate, sign, verify.

Secret keys are unsealed inside the worker for one operation and never returned;
rewrap decrypts and re-encrypts without the plaintext leaving the handler.

Status per case (besides the lifecycle table in :mod:`.keys`), with ``details.reason``:

===================================================== ============= ==== =====================
case                                                  code          HTTP reason
===================================================== ============= ==== =====================
the key's type cannot do it (sign with a KEM key...)  invalid_input 400  unsupported_operation
malformed ``x0:v<n>:`` ciphertext                     invalid_input 400  malformed, ...
tampered ciphertext, wrong associated data or key     invalid_input 400  decryption_failed
ciphertext names a version the key does not have      invalid_input 400  unknown_version
version below ``min_decryption_version``              invalid_input 400  version_too_old
a request's ``version`` field names no version        not_found     404  version_not_found
===================================================== ============= ==== =====================

Keys are the caller's tenant's (``context.tenant``); another tenant's key is a 404.

"Too old" is 400, as in Vault ("key version is too old"): the fault is in what the
caller sent, and no retry succeeds until an operator lowers the floor.
"""

from __future__ import annotations

from x0_common.contract import Crypto
from x0_common.events.crypto import (
    DecryptRequest,
    DecryptResult,
    EncryptRequest,
    EncryptResult,
    KeyDecapsulateRequest,
    KeyDecapsulateResult,
    KeySignRequest,
    KeySignResult,
    KeyVerifyRequest,
    RewrapRequest,
    VerifyResult,
)
from x0_common.kafka import RequestContext, Responder
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import Kind, kemdem
from x0_crypto.handlers.key_common import counted


def _wanted(version: int | None) -> list[int]:
    """Versions to load besides the latest."""
    return [] if version is None else [version]


class KeyUse:
    """The six operations; each counts its failures and times its crypto work."""

    def __init__(self, deps: CryptoDeps) -> None:
        self._deps = deps
        self._algorithms = deps.algorithms
        self._metrics = deps.metrics

    def _store(self, context: RequestContext) -> KeyStore:
        return self._deps.keystore.of(context.tenant)

    async def _secret(
        self, context: RequestContext, name: str, version: int | None, kind: Kind, operation: str
    ) -> tuple[str, int, bytes]:
        """For ``operation`` with version ``version`` (the latest when None) of the key
        ``name`` of ``kind``: the key's type, the version and its secret key."""
        loaded = await self._store(context).load(name, _wanted(version))
        loaded.key.require_kind(kind, operation)
        usable = loaded.key.usable(version)
        return loaded.key.type, usable.version, loaded.secret_key(usable.version)

    async def encrypt(self, request: EncryptRequest, context: RequestContext) -> EncryptResult:
        """KEM-DEM under the latest version (public key only: no secret is unsealed)."""
        with counted(self._metrics, "encrypt"):
            key = (await self._store(context).load(request.name, [], secrets=False)).key
            key.require_kind(Kind.KEM, "encrypt")
            latest = key.usable(None)
            with self._metrics.operation(key.type, "key_encrypt"):
                ciphertext = kemdem.encrypt(
                    self._algorithms.kem(key.type),
                    latest.public_key,
                    latest.version,
                    request.plaintext,
                    request.associated_data,
                )
        return EncryptResult(ciphertext=ciphertext, version=latest.version)

    async def decrypt(self, request: DecryptRequest, context: RequestContext) -> DecryptResult:
        """The plaintext, with the version the ciphertext names."""
        with counted(self._metrics, "decrypt"):
            parsed = kemdem.parse(request.ciphertext)
            loaded = await self._store(context).load(request.name, [parsed.version])
            loaded.key.require_kind(Kind.KEM, "decrypt")
            version = loaded.key.usable_for_ciphertext(parsed.version)
            secret_key = loaded.secret_key(version.version)
            with self._metrics.operation(loaded.key.type, "key_decrypt"):
                plaintext = kemdem.decrypt(
                    self._algorithms.kem(loaded.key.type),
                    secret_key,
                    parsed,
                    request.associated_data,
                )
        return DecryptResult(plaintext=plaintext)

    async def rewrap(self, request: RewrapRequest, context: RequestContext) -> EncryptResult:
        """Decrypt with the stated version, encrypt under the latest; one snapshot of both."""
        with counted(self._metrics, "rewrap"):
            parsed = kemdem.parse(request.ciphertext)
            loaded = await self._store(context).load(request.name, [parsed.version])
            key = loaded.key
            key.require_kind(Kind.KEM, "rewrap")
            source = key.usable_for_ciphertext(parsed.version)
            latest = key.usable(None)
            kem = self._algorithms.kem(key.type)
            secret_key = loaded.secret_key(source.version)
            with self._metrics.operation(key.type, "key_rewrap"):
                plaintext = kemdem.decrypt(kem, secret_key, parsed, request.associated_data)
                ciphertext = kemdem.encrypt(
                    kem, latest.public_key, latest.version, plaintext, request.associated_data
                )
        return EncryptResult(ciphertext=ciphertext, version=latest.version)

    async def decapsulate(
        self, request: KeyDecapsulateRequest, context: RequestContext
    ) -> KeyDecapsulateResult:
        """The shared secret of a ciphertext encapsulated to one of the key's versions."""
        with counted(self._metrics, "decapsulate"):
            key_type, version, secret_key = await self._secret(
                context, request.name, request.version, Kind.KEM, "decapsulate"
            )
            with self._metrics.operation(key_type, "key_decapsulate"):
                shared = self._algorithms.kem(key_type).decapsulate(secret_key, request.ciphertext)
        return KeyDecapsulateResult(shared_secret=shared, version=version)

    async def sign(self, request: KeySignRequest, context: RequestContext) -> KeySignResult:
        """A signature by the latest version, or the one asked for."""
        with counted(self._metrics, "sign"):
            key_type, version, secret_key = await self._secret(
                context, request.name, request.version, Kind.SIGNATURE, "sign"
            )
            with self._metrics.operation(key_type, "key_sign"):
                signature = self._algorithms.signature(key_type).sign(
                    secret_key, request.message, context=request.context
                )
        return KeySignResult(signature=signature, version=version)

    async def verify(self, request: KeyVerifyRequest, context: RequestContext) -> VerifyResult:
        """Whether the signature verifies under the version's public key."""
        with counted(self._metrics, "verify"):
            loaded = await self._store(context).load(
                request.name, _wanted(request.version), secrets=False
            )
            loaded.key.require_kind(Kind.SIGNATURE, "verify")
            version = loaded.key.usable(request.version)
            with self._metrics.operation(loaded.key.type, "key_verify"):
                valid = self._algorithms.signature(loaded.key.type).verify(
                    version.public_key, request.message, request.signature, context=request.context
                )
        return VerifyResult(valid=valid)


def register(responder: Responder, deps: CryptoDeps) -> None:
    """Register the operations that use a managed key: :class:`KeyUse`'s methods are
    the handlers."""
    use = KeyUse(deps)
    for operation, handler in (
        (Crypto.KEY_ENCRYPT, use.encrypt),
        (Crypto.KEY_DECRYPT, use.decrypt),
        (Crypto.KEY_REWRAP, use.rewrap),
        (Crypto.KEY_DECAPSULATE, use.decapsulate),
        (Crypto.KEY_SIGN, use.sign),
        (Crypto.KEY_VERIFY, use.verify),
    ):
        responder.operation(operation)(handler)
