"""The FIPS 203 input checks (sections 7.2 and 7.3), for backends that may skip them.

pyca/OpenSSL and pqcrypto run these themselves. liboqs releases differ (older ones
accept any bytes), so the liboqs backend runs them here before calling it.
"""

from __future__ import annotations

import hashlib
import hmac

from x0_crypto.errors import InvalidInput

_Q = 3329


def _rank(key_len: int, per_rank: int, extra: int) -> int:
    return (key_len - extra) // per_rank


def check_encapsulation_key(algorithm: str, public_key: bytes) -> None:
    """Modulus check: every 12-bit coefficient of ``t_hat`` in ``ek`` is below q.

    Equivalent to the standard's ``ByteEncode12(ByteDecode12(ek)) == ek``: a value
    at or above q is the only thing decoding (which reduces mod q) would change.
    """
    k = _rank(len(public_key), 384, 32)
    packed = public_key[: 384 * k]
    lo, mid, hi = packed[0::3], packed[1::3], packed[2::3]
    # Each 3 bytes hold two little-endian 12-bit coefficients.
    pairs = zip(lo, mid, hi, strict=True)
    if any((a | (b & 15) << 8) >= _Q or (b >> 4 | c << 4) >= _Q for a, b, c in pairs):
        raise InvalidInput(algorithm, "public_key", reason="not a valid encapsulation key")


def check_decapsulation_key(algorithm: str, secret_key: bytes) -> None:
    """Hash check: the ``H(ek)`` stored in an expanded ``dk`` matches its ``ek``."""
    k = _rank(len(secret_key), 768, 96)
    ek = secret_key[384 * k : 768 * k + 32]
    stored = secret_key[768 * k + 32 : 768 * k + 64]
    if not hmac.compare_digest(hashlib.sha3_256(ek).digest(), stored):
        raise InvalidInput(algorithm, "secret_key", reason="not a valid decapsulation key")
