"""The FIPS 204 context string that ML-DSA sign and verify requests may carry.

A context separates signature domains: a signature made under one context verifies
under no other, so two protocols sharing a key cannot replay each other's signatures.
FIPS 204 section 5.2 caps it at 255 bytes (its length is encoded in one byte of the
signed message ``M' = 0 || len(ctx) || ctx || M``) and makes the empty string the
default, which is also what every request without the field means.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from x0_common.events.binary import BASE64URL_PATTERN, Base64Bytes

MAX_CONTEXT_BYTES: Final = 255
#: The error type of a context over :data:`MAX_CONTEXT_BYTES` (the gateway answers 422).
CONTEXT_TOO_LONG: Final = "signature_context_too_long"


def _at_most_255_bytes(value: bytes) -> bytes:
    # Checked on the decoded bytes (a limit on the base64 text would be off by the
    # encoding's rounding), with an error type of its own: pydantic's generic
    # ``too_long`` is what the gateway answers 413 "too large" (an oversized batch).
    if len(value) > MAX_CONTEXT_BYTES:
        raise PydanticCustomError(
            CONTEXT_TOO_LONG,
            "must be at most {max_bytes} bytes, not {actual_bytes}",
            {"max_bytes": MAX_CONTEXT_BYTES, "actual_bytes": len(value)},
        )
    return value


SignatureContext = Annotated[
    Base64Bytes,
    AfterValidator(_at_most_255_bytes),
    WithJsonSchema(
        {
            "type": "string",
            "contentEncoding": "base64url",
            # 255 bytes are exactly 340 base64url characters, with no padding.
            "maxLength": 340,
            "pattern": BASE64URL_PATTERN,
            "description": "FIPS 204 context string, 0 to 255 bytes; empty (the default) is none.",
            "examples": ["Y2hhdC12MQ"],
        }
    ),
]
"""A signing context: base64url on the wire, at most :data:`MAX_CONTEXT_BYTES` bytes."""
