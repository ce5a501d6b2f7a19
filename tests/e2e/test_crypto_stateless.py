"""Stateless crypto through the gateway, Kafka and a real crypto worker process."""

from __future__ import annotations

import base64

import httpx
import pytest

pytestmark = pytest.mark.e2e

KEMS = ["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024", "X-Wing"]
SIGNATURES = ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "Ed25519+ML-DSA-65"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def post(client: httpx.AsyncClient, path: str, body: dict) -> dict:
    response = await client.post(f"/v1/crypto{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_algorithms_lists_every_algorithm_with_backend_and_sizes(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/v1/crypto/algorithms")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["algorithms"]}
    assert set(rows) == set(KEMS + SIGNATURES)
    assert rows["ML-KEM-768"]["backend"] == "openssl"
    assert rows["ML-KEM-768"]["public_key_bytes"] == 1184
    assert rows["ML-KEM-768"]["ciphertext_bytes"] == 1088
    assert rows["X-Wing"]["public_key_bytes"] == 1216
    assert rows["ML-DSA-65"]["signature_bytes"] == 3309
    assert rows["ML-KEM-512"]["backend"] in {"pqcrypto", "liboqs"}


@pytest.mark.parametrize("algorithm", KEMS)
async def test_both_sides_of_a_kem_agree(gateway: httpx.AsyncClient, algorithm: str) -> None:
    pair = await post(gateway, "/kem/keypair", {"algorithm": algorithm})
    sent = await post(
        gateway, "/kem/encapsulate", {"algorithm": algorithm, "public_key": pair["public_key"]}
    )
    received = await post(
        gateway,
        "/kem/decapsulate",
        {
            "algorithm": algorithm,
            "secret_key": pair["secret_key"],
            "ciphertext": sent["ciphertext"],
        },
    )
    assert received["shared_secret"] == sent["shared_secret"]
    assert len(unb64(sent["shared_secret"])) == 32


@pytest.mark.parametrize("algorithm", SIGNATURES)
async def test_signatures_verify_and_tampering_is_invalid_not_an_error(
    gateway: httpx.AsyncClient, algorithm: str
) -> None:
    pair = await post(gateway, "/signatures/keypair", {"algorithm": algorithm})
    message = b64(b"beacon from node-7")
    signed = await post(
        gateway,
        "/signatures/sign",
        {"algorithm": algorithm, "secret_key": pair["secret_key"], "message": message},
    )
    check = {
        "algorithm": algorithm,
        "public_key": pair["public_key"],
        "message": message,
        "signature": signed["signature"],
    }
    assert (await post(gateway, "/signatures/verify", check))["valid"] is True

    tampered = bytearray(unb64(signed["signature"]))
    tampered[len(tampered) // 2] ^= 1
    assert (await post(gateway, "/signatures/verify", {**check, "signature": b64(tampered)})) == {
        "valid": False
    }
    other = {**check, "message": b64(b"another message")}
    assert (await post(gateway, "/signatures/verify", other))["valid"] is False


async def test_a_batch_keeps_order_and_each_item_carries_its_own_error(
    gateway: httpx.AsyncClient,
) -> None:
    pair = await post(gateway, "/kem/keypair", {"algorithm": "ML-KEM-768"})
    items = [{"algorithm": "ML-KEM-768", "public_key": pair["public_key"]} for _ in range(64)]
    items[10] = {"algorithm": "ML-KEM-768", "public_key": b64(b"short")}
    batch = await post(gateway, "/kem/encapsulate/batch", {"items": items})

    outcomes = batch["items"]
    assert len(outcomes) == 64
    assert outcomes[10]["error"]["code"] == "invalid_input"
    assert outcomes[10]["error"]["details"]["expected"] == 1184
    assert "result" not in outcomes[10] or outcomes[10]["result"] is None
    decapsulated = await post(
        gateway,
        "/kem/decapsulate/batch",
        {
            "items": [
                {
                    "algorithm": "ML-KEM-768",
                    "secret_key": pair["secret_key"],
                    "ciphertext": outcome["result"]["ciphertext"],
                }
                for index, outcome in enumerate(outcomes)
                if index != 10
            ]
        },
    )
    expected = [o["result"]["shared_secret"] for i, o in enumerate(outcomes) if i != 10]
    assert [o["result"]["shared_secret"] for o in decapsulated["items"]] == expected
