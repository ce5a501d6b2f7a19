"""Managed keys and the mesh handshake through the gateway, Kafka and a crypto worker."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def call(
    client: httpx.AsyncClient, method: str, path: str, body: object = None, status: int = 200
) -> dict:
    response = await client.request(method, f"/v1/crypto{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_a_managed_key_lives_rotates_encrypts_and_rewraps(
    gateway: httpx.AsyncClient,
) -> None:
    name = unique("vault-like")
    created = await call(
        gateway, "POST", "/keys", {"name": name, "type": "X-Wing", "request_id": name}, status=201
    )
    assert created["latest_version"] == 1
    assert "secret" not in str(created).lower()
    again = await call(
        gateway, "POST", "/keys", {"name": name, "type": "X-Wing", "request_id": name}, status=201
    )
    assert again["versions"] == created["versions"]

    plaintext = b64(b"mesh routing table")
    aad = b64(b"node-7")
    sealed = await call(
        gateway, "POST", f"/keys/{name}/encrypt", {"plaintext": plaintext, "associated_data": aad}
    )
    assert sealed["ciphertext"].startswith("x0:v1:")

    rotated = await call(gateway, "POST", f"/keys/{name}/rotate")
    assert rotated["latest_version"] == 2
    assert len(rotated["versions"]) == 2
    rewrapped = await call(
        gateway,
        "POST",
        f"/keys/{name}/rewrap",
        {"ciphertext": sealed["ciphertext"], "associated_data": aad},
    )
    assert rewrapped["ciphertext"].startswith("x0:v2:")
    opened = await call(
        gateway,
        "POST",
        f"/keys/{name}/decrypt",
        {"ciphertext": rewrapped["ciphertext"], "associated_data": aad},
    )
    assert opened["plaintext"] == plaintext

    await call(gateway, "PATCH", f"/keys/{name}/config", {"min_decryption_version": 2})
    too_old = await call(
        gateway,
        "POST",
        f"/keys/{name}/decrypt",
        {"ciphertext": sealed["ciphertext"], "associated_data": aad},
        status=400,
    )
    assert too_old["code"] == "invalid_input"
    wrong_aad = await call(
        gateway,
        "POST",
        f"/keys/{name}/decrypt",
        {"ciphertext": rewrapped["ciphertext"], "associated_data": b64(b"x")},
        status=400,
    )
    assert wrong_aad["code"] == "invalid_input"

    # Not exportable, not deletable until allowed.
    assert (await call(gateway, "GET", f"/keys/{name}/export", status=409))["code"] == "conflict"
    assert (await call(gateway, "DELETE", f"/keys/{name}", status=409))["code"] == "conflict"
    await call(gateway, "PATCH", f"/keys/{name}/config", {"deletion_allowed": True})
    assert (await call(gateway, "DELETE", f"/keys/{name}"))["deleted"] is True
    assert (await call(gateway, "GET", f"/keys/{name}", status=404))["code"] == "not_found"


async def test_a_backup_restores_a_working_key(gateway: httpx.AsyncClient) -> None:
    name = unique("signer")
    created = await call(
        gateway,
        "POST",
        "/keys",
        {"name": name, "type": "ML-DSA-65", "deletion_allowed": True},
        status=201,
    )
    backup = await call(gateway, "GET", f"/keys/{name}/backup")
    await call(gateway, "DELETE", f"/keys/{name}")
    restored = await call(gateway, "POST", "/keys/restore", {"backup": backup["backup"]})
    assert restored["versions"] == created["versions"]
    message = b64(b"restored")
    signed = await call(gateway, "POST", f"/keys/{name}/sign", {"message": message})
    check = await call(
        gateway,
        "POST",
        f"/keys/{name}/verify",
        {"message": message, "signature": signed["signature"]},
    )
    assert check["valid"] is True


async def test_two_nodes_agree_on_directional_session_keys(gateway: httpx.AsyncClient) -> None:
    node_a, node_b = unique("node-a"), unique("node-b")
    for name in (node_a, node_b):
        await call(gateway, "POST", "/keys", {"name": name, "type": "X-Wing"}, status=201)

    opened = await call(
        gateway, "POST", "/sessions", {"initiator_key": node_a, "responder_key": node_b}
    )
    accepted = await call(
        gateway,
        "POST",
        "/sessions/accept",
        {
            "responder_key": node_b,
            "responder_key_version": opened["responder_key_version"],
            "session_id": opened["session_id"],
            "ciphertext": opened["ciphertext"],
            "initiator_public_key": opened["initiator_public_key"],
        },
    )

    assert accepted["keys"] == opened["keys"]
    keys = opened["keys"]
    assert keys["initiator_to_responder"] != keys["responder_to_initiator"]


async def test_a_signed_beacon_verifies_once_and_its_replay_is_refused(
    gateway: httpx.AsyncClient,
) -> None:
    key = unique("beacon-key")
    await call(gateway, "POST", "/keys", {"name": key, "type": "ML-DSA-65"}, status=201)
    signed = await call(
        gateway, "POST", "/beacons/sign", {"key_name": key, "node_id": unique("node")}
    )
    verify = {k: v for k, v in signed.items() if k != "key_change_proof" or v is not None}

    first = await call(gateway, "POST", "/beacons/verify", verify)
    assert first == {**first, "valid": True, "reason": "ok"}
    replay = await call(gateway, "POST", "/beacons/verify", verify)
    assert replay["valid"] is False
    assert replay["reason"] == "replayed"
