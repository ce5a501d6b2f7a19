"""The mesh session handshake: one X-Wing encapsulation, two directional keys.

Construction (version 1; every length in bytes, ``lp(x) = u32be(len(x)) || x``)::

    A (initiator), B (responder); pk_A, pk_B X-Wing public keys (1216)
    initiate:  ct, ss  = X-Wing.Encaps(pk_B)                     ct 1120, ss 32
               sid     = hex(16 random bytes)                    32 ASCII characters
    accept:    ss      = X-Wing.Decaps(sk_B, ct)

    transcript = lp("x0tta6bl4/session/v1") || lp(utf8(sid)) || lp(pk_A) || lp(pk_B) || lp(ct)
    salt       = SHA-256(transcript)
    k_i2r      = HKDF-SHA256(ikm=ss, salt=salt, info="x0tta6bl4/session/v1/i2r", L=32)
    k_r2i      = HKDF-SHA256(ikm=ss, salt=salt, info="x0tta6bl4/session/v1/r2i", L=32)

Why this shape:

* The transcript binds the keys to both identities, the session and the exact
  ciphertext: changing any of them changes the keys. Length prefixes make the
  encoding injective (no two field lists share bytes). The label fixes the protocol
  version and the KEM (v1 is X-Wing only).
* Distinct ``info`` strings give independent keys per direction, so a message sent
  A->B can never be reflected back to A as if it came from B under the same key.
* X-Wing rejects implicitly: a tampered ciphertext decapsulates to an unrelated
  secret, so ``accept`` never fails on it; the two sides simply hold different keys
  and the first authenticated message between them fails.

What it does not do: only B is authenticated (only the holder of sk_B derives the
keys); pk_A is bound into the keys but A proves nothing by it. A session also has no
forward secrecy against a later compromise of sk_B (one static KEM key). Callers that
need these add a signature by A, or an ephemeral second encapsulation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from x0_crypto.domain.algorithms import X_WING
from x0_crypto.domain.checked import CheckedKem, require_length
from x0_crypto.domain.framing import length_prefixed

LABEL = b"x0tta6bl4/session/v1"
INFO_I2R = LABEL + b"/i2r"
INFO_R2I = LABEL + b"/r2i"
KEY_BYTES = 32
SESSION_ID_BYTES = 16


@dataclass(frozen=True, slots=True, repr=False)
class DirectionalKeys:
    """One key per direction; ``repr`` hides them so a log line cannot leak them."""

    initiator_to_responder: bytes
    responder_to_initiator: bytes

    def __repr__(self) -> str:
        return "DirectionalKeys(<redacted>)"


@dataclass(frozen=True, slots=True)
class Initiated:
    """What ``initiate`` produces: A keeps ``keys`` and sends the rest to B."""

    session_id: str
    ciphertext: bytes
    keys: DirectionalKeys


def new_session_id() -> str:
    """16 random bytes as 32 lowercase hex characters."""
    return secrets.token_hex(SESSION_ID_BYTES)


def transcript(
    *, session_id: str, initiator_public_key: bytes, responder_public_key: bytes, ciphertext: bytes
) -> bytes:
    """The length-prefixed transcript both sides hash (module docstring)."""
    return length_prefixed(
        LABEL, session_id.encode(), initiator_public_key, responder_public_key, ciphertext
    )


def derive_keys(shared_secret: bytes, transcript_bytes: bytes) -> DirectionalKeys:
    """HKDF-SHA256 of the shared secret, salted with SHA-256 of the transcript."""
    salt = hashlib.sha256(transcript_bytes).digest()

    def one(info: bytes) -> bytes:
        # A fresh HKDF object per output: pyca's HKDF instances are single-use.
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(
            shared_secret
        )

    return DirectionalKeys(
        initiator_to_responder=one(INFO_I2R), responder_to_initiator=one(INFO_R2I)
    )


def _require_xwing(kem: CheckedKem) -> None:
    if kem.algorithm != X_WING:
        # A programming error, not bad input: v1 is defined for X-Wing only.
        msg = f"session v1 is defined for {X_WING}, not {kem.algorithm}"
        raise ValueError(msg)


def initiate(
    kem: CheckedKem, *, initiator_public_key: bytes, responder_public_key: bytes
) -> Initiated:
    """A's side: encapsulate to B and derive both directional keys.

    :class:`~x0_crypto.errors.InvalidInput` for a public key of the wrong length.
    """
    _require_xwing(kem)
    require_length(
        kem.algorithm, "initiator_public_key", initiator_public_key, kem.sizes.public_key
    )
    ciphertext, shared = kem.encapsulate(responder_public_key)
    session_id = new_session_id()
    keys = derive_keys(
        shared,
        transcript(
            session_id=session_id,
            initiator_public_key=initiator_public_key,
            responder_public_key=responder_public_key,
            ciphertext=ciphertext,
        ),
    )
    return Initiated(session_id=session_id, ciphertext=ciphertext, keys=keys)


def accept(
    kem: CheckedKem,
    *,
    responder_secret_key: bytes,
    responder_public_key: bytes,
    initiator_public_key: bytes,
    session_id: str,
    ciphertext: bytes,
) -> DirectionalKeys:
    """B's side: decapsulate and derive the keys from the same transcript.

    Never fails on a tampered input (implicit rejection): it returns keys that A does
    not have. Wrong lengths raise :class:`~x0_crypto.errors.InvalidInput`.
    """
    _require_xwing(kem)
    require_length(
        kem.algorithm, "initiator_public_key", initiator_public_key, kem.sizes.public_key
    )
    require_length(
        kem.algorithm, "responder_public_key", responder_public_key, kem.sizes.public_key
    )
    shared = kem.decapsulate(responder_secret_key, ciphertext)
    return derive_keys(
        shared,
        transcript(
            session_id=session_id,
            initiator_public_key=initiator_public_key,
            responder_public_key=responder_public_key,
            ciphertext=ciphertext,
        ),
    )
