"""A signing ``context`` the gateway refuses before anything reaches Kafka.

Over 255 bytes is 422 "validation" (FIPS 204's limit), not the 413 of an oversized
body; a context that is not base64url is 400, as for every other binary field.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from x0_gateway.app import create_app
from x0_gateway.testing import authenticate_as

from .http_support import in_process_client, unit_settings

pytestmark = pytest.mark.unit


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


SIGN = {"algorithm": "ML-DSA-65", "secret_key": b64(bytes(32)), "message": b64(b"m")}
VERIFY = {
    "algorithm": "ML-DSA-65",
    "public_key": b64(bytes(1952)),
    "message": b64(b"m"),
    "signature": b64(bytes(3309)),
}
# (path, body without context, where the context goes in the error's loc)
ROUTES: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("/v1/crypto/signatures/sign", SIGN, ["body"]),
    ("/v1/crypto/signatures/verify", VERIFY, ["body"]),
    ("/v1/crypto/signatures/sign/batch", {"items": [SIGN]}, ["body", "items", 0]),
    ("/v1/crypto/signatures/verify/batch", {"items": [VERIFY]}, ["body", "items", 0]),
    ("/v1/crypto/keys/node-a/sign", {"message": b64(b"m")}, ["body"]),
    (
        "/v1/crypto/keys/node-a/verify",
        {"message": b64(b"m"), "signature": b64(bytes(3309))},
        ["body"],
    ),
]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in process, its lifespan never run: an unroutable broker, no requester."""
    settings = unit_settings()
    app = create_app(settings)
    authenticate_as(app)  # who calls is not the subject here
    async with in_process_client(app) as client:
        yield client


def _with_context(body: dict[str, Any], context: str) -> dict[str, Any]:
    if "items" in body:
        return {"items": [{**item, "context": context} for item in body["items"]]}
    return {**body, "context": context}


@pytest.mark.parametrize(("path", "body", "loc"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_a_256_byte_context_is_422(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await client.post(path, json=_with_context(body, b64(bytes(256))))
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation"
    assert problem["details"]["errors"] == [
        {
            "loc": [*loc, "context"],
            "msg": "must be at most 255 bytes, not 256",
            "type": "signature_context_too_long",
        }
    ]


async def test_a_context_that_is_not_base64url_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/crypto/signatures/sign", json={**SIGN, "context": "a+b/"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
