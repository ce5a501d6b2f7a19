"""Bad input gets a clear 4xx problem, and the worker keeps answering."""

from __future__ import annotations

import base64

import httpx
import pytest

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def problem(client: httpx.AsyncClient, path: str, body: object, status: int) -> dict:
    response = await client.post(f"/v1/crypto{path}", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


async def test_malformed_base64_is_400(gateway: httpx.AsyncClient) -> None:
    body = await problem(
        gateway, "/kem/encapsulate", {"algorithm": "ML-KEM-768", "public_key": "not*base64!"}, 400
    )
    assert body["code"] == "invalid_input"
    assert body["details"]["errors"][0]["loc"] == ["body", "public_key"]


async def test_a_wrong_length_for_the_algorithm_is_400_and_names_the_lengths(
    gateway: httpx.AsyncClient,
) -> None:
    body = await problem(
        gateway,
        "/kem/decapsulate",
        {"algorithm": "X-Wing", "secret_key": b64(bytes(32)), "ciphertext": b64(bytes(100))},
        400,
    )
    assert body["code"] == "invalid_input"
    assert body["details"] == {
        "algorithm": "X-Wing",
        "field": "ciphertext",
        "reason": "must be 1120 bytes, got 100",
        "expected": 1120,
        "actual": 100,
    }


async def test_an_unknown_algorithm_is_422(gateway: httpx.AsyncClient) -> None:
    body = await problem(gateway, "/kem/keypair", {"algorithm": "RSA-2048"}, 422)
    assert body["code"] == "validation"


async def test_an_oversized_batch_is_413(gateway: httpx.AsyncClient) -> None:
    items = [{"algorithm": "ML-KEM-768"}] * 257
    body = await problem(gateway, "/kem/keypair/batch", {"items": items}, 413)
    assert body["code"] == "too_large"


async def test_an_oversized_body_is_413(gateway: httpx.AsyncClient) -> None:
    huge = {
        "algorithm": "ML-DSA-65",
        "secret_key": b64(bytes(32)),
        "message": "A" * (5 * 1024 * 1024),
    }
    body = await problem(gateway, "/signatures/sign", huge, 413)
    assert body["code"] == "too_large"


async def test_the_worker_keeps_answering_after_bad_input(gateway: httpx.AsyncClient) -> None:
    for _ in range(3):
        await gateway.post(
            "/v1/crypto/kem/decapsulate",
            json={"algorithm": "ML-KEM-1024", "secret_key": b64(b"x"), "ciphertext": b64(b"y")},
        )
    response = await gateway.post("/v1/crypto/kem/keypair", json={"algorithm": "ML-KEM-1024"})
    assert response.status_code == 200


async def test_secret_material_never_appears_in_an_error(gateway: httpx.AsyncClient) -> None:
    secret = bytes(range(31))  # one byte short of an ML-DSA seed
    response = await gateway.post(
        "/v1/crypto/signatures/sign",
        json={"algorithm": "ML-DSA-65", "secret_key": b64(secret), "message": b64(b"m")},
    )
    assert response.status_code == 400
    assert b64(secret) not in response.text
    assert secret.hex() not in response.text
