"""Unambiguous byte encodings for what the mesh protocols hash and sign.

Every variable-length field is written as ``u32be(len(field)) || field``, so no two
different field lists can encode to the same bytes: ``("ab", "c")`` and ``("a", "bc")``
differ in their prefixes. Fixed-width integers are written big-endian.
"""

from __future__ import annotations

from x0_crypto.errors import InvalidInput

_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1


def length_prefixed(*fields: bytes) -> bytes:
    """``u32be(len(f)) || f`` for each field, concatenated in order."""
    parts: list[bytes] = []
    for field in fields:
        if len(field) > _U32_MAX:
            # Unreachable with message-size limits in front; kept so the encoding stays
            # injective even for a caller that bypasses them.
            msg = "a framed field is longer than 2**32 - 1 bytes"
            raise ValueError(msg)
        parts += (len(field).to_bytes(4, "big"), field)
    return b"".join(parts)


def u64(value: int, *, algorithm: str, field: str) -> bytes:
    """``value`` as 8 bytes big-endian; :class:`InvalidInput` outside ``0 .. 2**64 - 1``."""
    if not 0 <= value <= _U64_MAX:
        raise InvalidInput(algorithm, field, reason="must fit in an unsigned 64-bit integer")
    return value.to_bytes(8, "big")
