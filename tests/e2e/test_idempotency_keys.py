"""``Idempotency-Key`` end to end: a retried rotate rotates once, a retried create
answers the first answer, through the real gateway, Kafka and crypto worker."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

KEYS = "/v1/crypto/keys"


async def test_a_retried_rotate_rotates_once(gateway: httpx.AsyncClient) -> None:
    name = f"idem-{uuid.uuid4().hex[:10]}"
    created = await gateway.post(KEYS, json={"name": name, "type": "ML-DSA-65"})
    assert created.status_code == 201, created.text
    retry = {"Idempotency-Key": uuid.uuid4().hex}
    first = await gateway.post(f"{KEYS}/{name}/rotate", headers=retry)
    again = await gateway.post(f"{KEYS}/{name}/rotate", headers=retry)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["latest_version"] == 2
    read = await gateway.get(f"{KEYS}/{name}")
    assert read.json()["latest_version"] == 2
    # A new key is a new request: it rotates again.
    third = await gateway.post(f"{KEYS}/{name}/rotate", headers={"Idempotency-Key": "another"})
    assert third.json()["latest_version"] == 3


async def test_a_retried_create_with_another_body_is_refused(gateway: httpx.AsyncClient) -> None:
    name = f"idem-{uuid.uuid4().hex[:10]}"
    retry = {"Idempotency-Key": uuid.uuid4().hex}
    first = await gateway.post(KEYS, json={"name": name, "type": "X-Wing"}, headers=retry)
    replayed = await gateway.post(KEYS, json={"name": name, "type": "X-Wing"}, headers=retry)
    other = await gateway.post(KEYS, json={"name": name, "type": "ML-KEM-768"}, headers=retry)
    assert first.status_code == replayed.status_code == 201
    assert replayed.json() == first.json()
    assert other.status_code == 422
    assert other.json()["details"]["reason"] == "idempotency_key_reused"
