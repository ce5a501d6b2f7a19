"""Binary fields on the wire: base64url, padding optional on input, none on output."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

# The gateway answers this error type with 400 invalid_input rather than 422.
BASE64_ERROR = "base64url"
# What the JSON schema states of base64url text: its alphabet, padding optional. A
# string of this shape may still not decode (a length of 4n+1): that is a 400 too.
BASE64URL_PATTERN = "^[A-Za-z0-9_-]*={0,2}$"


def _decode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(BASE64_ERROR, "must be a base64url string")
    # Strict: urlsafe_b64decode would silently drop characters outside the alphabet.
    if "+" in value or "/" in value:
        raise PydanticCustomError(BASE64_ERROR, "is not valid base64url")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError(BASE64_ERROR, "is not valid base64url") from None


def encode(value: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_decode),
    PlainSerializer(encode, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "contentEncoding": "base64url",
            "pattern": BASE64URL_PATTERN,
            "description": "base64url (RFC 4648 section 5), padding optional; text that does "
            "not decode is answered 400 invalid_input",
            "examples": ["AAECAw"],
        }
    ),
]
"""Bytes carried as base64url text (RFC 4648 §5)."""
