"""Mesh operations: the session handshake and signed beacons.

Sessions use nodes' managed X-Wing keys and beacons a managed ML-DSA-65 key, read
through :class:`~x0_crypto.domain.ports.ManagedKeys` from ``deps.keystore`` (opened at
start-up next to the pool). Beacon verification needs no managed key: it
checks the presented key against the pins in PostgreSQL and the nonces in Redis.

A managed key of another type is ``invalid_input`` (400); an unknown key or version
is the keystore's ``not_found`` (404). Keys, pins and nonces are the caller's tenant's
(``context.tenant``): another tenant's key is a 404, its node pins and nonces are
separate (the same node id in two tenants is two nodes).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from x0_common.contract import Crypto
from x0_common.errors import InvalidInput, NotFound
from x0_common.events.crypto import (
    Beacon,
    BeaconSignRequest,
    BeaconVerifyRequest,
    BeaconVerifyResult,
    SessionAcceptRequest,
    SessionAcceptResult,
    SessionInitiateRequest,
    SessionInitiateResult,
    SessionKeys,
    SignedBeacon,
)
from x0_common.kafka import RequestContext, Responder
from x0_crypto.adapters.nonces import RedisNonceCache
from x0_crypto.adapters.pins import PostgresPinStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import session
from x0_crypto.domain.algorithms import ML_DSA_65, X_WING
from x0_crypto.domain.beacon_verifier import BeaconVerifier
from x0_crypto.domain.beacons import BeaconFields, beacon_message, key_change_message, new_beacon
from x0_crypto.domain.framing import length_prefixed
from x0_crypto.domain.ports import ManagedKeys, PublicKeyInfo, require_key_type
from x0_crypto.metrics import SERVICE


def wall_clock_ms() -> int:
    """Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def request_id(context: RequestContext) -> str:
    """Who asked, and which request: a redelivery has the same id, another caller never.

    The principal (tenant and subject) is part of it so that one caller cannot claim
    another's request by reusing its correlation id.
    """
    principal = context.principal
    framed = length_prefixed(
        principal.tenant.encode(), principal.subject.encode(), context.correlation_id.encode()
    )
    return hashlib.sha256(framed).hexdigest()


def _session_keys(keys: session.DirectionalKeys) -> SessionKeys:
    return SessionKeys(
        initiator_to_responder=keys.initiator_to_responder,
        responder_to_initiator=keys.responder_to_initiator,
    )


class MeshOperations:
    """The four operations, on the service's registry, keystore, pins and nonces."""

    def __init__(self, deps: CryptoDeps, *, clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self._deps = deps
        self._kem = deps.algorithms.kem(X_WING)
        self._dsa = deps.algorithms.signature(ML_DSA_65)
        self._metrics = deps.metrics
        self._clock_ms = clock_ms

    def keys(self, tenant: str) -> ManagedKeys:
        """The tenant's managed keys (the keystore opens at start-up, after registration)."""
        return self._deps.keystore.of(tenant)

    def verifier(self, tenant: str) -> BeaconVerifier:
        """The tenant's pins and nonces (built per call: a few small objects)."""
        return BeaconVerifier(
            self._dsa,
            PostgresPinStore(self._deps.stores.pool, tenant=tenant),
            RedisNonceCache(self._deps.stores.redis, tenant=tenant),
            window_ms=self._deps.settings.beacon_window_seconds * 1000,
            clock_ms=self._clock_ms,
        )

    async def _public(
        self, keys: ManagedKeys, name: str, version: int | None, *, expected: str, field: str
    ) -> PublicKeyInfo:
        # The keystore may answer with a plain (type, version, public_key) tuple.
        info = PublicKeyInfo(*await keys.public_key(name, version))
        require_key_type(info, expected, field=field)
        return info

    async def initiate(
        self, request: SessionInitiateRequest, context: RequestContext
    ) -> SessionInitiateResult:
        """A opens a session to the latest version of B's key."""
        keys = self.keys(context.tenant)
        with self._metrics.operation(X_WING, "session_initiate"):
            initiator = await self._public(
                keys, request.initiator_key, None, expected=X_WING, field="initiator_key"
            )
            responder = await self._public(
                keys, request.responder_key, None, expected=X_WING, field="responder_key"
            )
            opened = session.initiate(
                self._kem,
                initiator_public_key=initiator.public_key,
                responder_public_key=responder.public_key,
            )
        return SessionInitiateResult(
            session_id=opened.session_id,
            ciphertext=opened.ciphertext,
            initiator_public_key=initiator.public_key,
            responder_public_key=responder.public_key,
            responder_key_version=responder.version,
            keys=_session_keys(opened.keys),
        )

    async def accept(
        self, request: SessionAcceptRequest, context: RequestContext
    ) -> SessionAcceptResult:
        """B derives the keys with the version of its key that A encapsulated to."""
        managed = self.keys(context.tenant)
        with self._metrics.operation(X_WING, "session_accept"):
            responder = await self._public(
                managed,
                request.responder_key,
                request.responder_key_version,
                expected=X_WING,
                field="responder_key",
            )
            secret = await managed.private_key(request.responder_key, responder.version)
            keys = session.accept(
                self._kem,
                responder_secret_key=secret,
                responder_public_key=responder.public_key,
                initiator_public_key=request.initiator_public_key,
                session_id=request.session_id,
                ciphertext=request.ciphertext,
            )
        return SessionAcceptResult(session_id=request.session_id, keys=_session_keys(keys))

    async def sign_beacon(
        self, request: BeaconSignRequest, context: RequestContext
    ) -> SignedBeacon:
        """A fresh beacon (now, 32 random bytes) signed by the key's latest version."""
        keys = self.keys(context.tenant)
        with self._metrics.operation(ML_DSA_65, "beacon_sign"):
            signer = await self._public(
                keys, request.key_name, None, expected=ML_DSA_65, field="key_name"
            )
            secret = await keys.private_key(request.key_name, signer.version)
            beacon = new_beacon(request.node_id, self._clock_ms())
            signature = self._dsa.sign(secret, beacon_message(beacon))
            proof = await self._key_change_proof(keys, request.key_name, request.node_id, signer)
        return SignedBeacon(
            beacon=Beacon(
                node_id=beacon.node_id, timestamp_ms=beacon.timestamp_ms, nonce=beacon.nonce
            ),
            signature=signature,
            public_key=signer.public_key,
            key_change_proof=proof,
        )

    async def _key_change_proof(
        self, keys: ManagedKeys, name: str, node_id: str, signer: PublicKeyInfo
    ) -> bytes | None:
        """The previous version's signature over the signer's key, once rotated.

        Verifiers pinned to the previous version move their pin with it. One that
        missed more than one rotation needs its pin reset by an operator.
        """
        if signer.version <= 1:
            return None
        try:
            previous = await self._public(
                keys, name, signer.version - 1, expected=ML_DSA_65, field="key_name"
            )
            secret = await keys.private_key(name, previous.version)
        except (NotFound, InvalidInput):
            # The keystore has no usable previous version (trimmed, or below the key's
            # floor): nothing can vouch for this key any more.
            return None
        return self._dsa.sign(secret, key_change_message(node_id, signer.public_key))

    async def verify_beacon(
        self, request: BeaconVerifyRequest, context: RequestContext
    ) -> BeaconVerifyResult:
        """Signature, window, pin, replay (:mod:`x0_crypto.domain.beacon_verifier`)."""
        beacon = BeaconFields(
            node_id=request.beacon.node_id,
            timestamp_ms=request.beacon.timestamp_ms,
            nonce=request.beacon.nonce,
        )
        with self._metrics.operation(ML_DSA_65, "beacon_verify"):
            verdict = await self.verifier(context.tenant).verify(
                beacon,
                request.signature,
                request.public_key,
                request.key_change_proof,
                request_id=request_id(context),
            )
        # Counted, not logged: a replay flood must not become a log flood.
        self._metrics.beacon_verifications.labels(SERVICE, verdict.reason).inc()
        return BeaconVerifyResult(valid=verdict.valid, reason=verdict.reason, pinned=verdict.pinned)


def register(responder: Responder, deps: CryptoDeps) -> MeshOperations:
    """Register the session and beacon operations; returns them (tests call them)."""
    mesh = MeshOperations(deps)

    for operation, handler in (
        (Crypto.SESSION_INITIATE, mesh.initiate),
        (Crypto.SESSION_ACCEPT, mesh.accept),
        (Crypto.BEACON_SIGN, mesh.sign_beacon),
        (Crypto.BEACON_VERIFY, mesh.verify_beacon),
    ):
        responder.operation(operation)(handler)
    return mesh
