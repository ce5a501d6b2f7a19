"""Symmetric keys from settings: 32 bytes, base64url, inline or from a mounted file.

One loader for every service secret of this shape (the crypto KEK, the Kafka sealing
key), so each is decoded, sized and checked against its development value the same
way: the development value is refused in production whichever way it comes (inline,
in a file, with or without padding), because the comparison is on the bytes.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pydantic import SecretStr

KEY_BYTES = 32


def development_key(label: str) -> str:
    """A development key's base64url text: fixed, public, refused in production."""
    return base64.urlsafe_b64encode(label.encode().ljust(KEY_BYTES, b"0")[:KEY_BYTES]).decode()


def decode_key(text: str, *, name: str) -> bytes:
    """The key bytes of base64url ``text`` (padding optional)."""
    text = text.strip()
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        msg = f"{name} is not base64url"
        raise ValueError(msg) from None
    if len(key) != KEY_BYTES:
        msg = f"{name} must be {KEY_BYTES} bytes, got {len(key)}"
        raise ValueError(msg)
    return key


def load_key(inline: SecretStr, file: Path | None, *, name: str) -> bytes:
    """The key from ``file`` when one is set, else from ``inline``."""
    text = file.read_text() if file is not None else inline.get_secret_value()
    return decode_key(text, name=name)


def refuse_development_key(key: bytes, development: str, *, name: str) -> None:
    """Raise when ``key`` is the development key (called in production)."""
    if key == decode_key(development, name=name):
        msg = f"{name} is the development key; set a real one in production"
        raise ValueError(msg)
