"""The caller's credential: ``Authorization: Bearer <api key>`` when one is known.

From ``X0_API_KEY``, else the file ``X0_API_KEY_FILE``, else the development admin key
``make up`` writes (``<stack dir>/dev-admin-key``). Without any, requests go without the
header, as the gateway accepted before it had authentication.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def key_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the development admin key is looked for."""
    if environ.get("X0_API_KEY_FILE"):
        return Path(environ["X0_API_KEY_FILE"])
    stack_dir = Path(environ.get("X0_STACK_DIR") or REPO_ROOT / ".stack")
    return stack_dir / "dev-admin-key"


def api_key(environ: Mapping[str, str] = os.environ) -> str | None:
    """The API key to send, or None."""
    if key := environ.get("X0_API_KEY", "").strip():
        return key
    path = key_file(environ)
    if path.is_file():
        return path.read_text().strip() or None
    return None


def headers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The headers every request carries."""
    key = api_key(environ)
    return {"Authorization": f"Bearer {key}"} if key else {}
