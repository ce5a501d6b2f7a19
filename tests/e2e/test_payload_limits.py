"""Payloads up to the gateway's body limit travel through Kafka and back (issue 13).

Before, a body between ~1 MiB and the 4 MiB limit got 503 (the publish failed with
MessageSizeTooLargeError) and a 256-item ML-DSA-87 sign batch timed out (its ~1.6 MB
reply could not be published). Now one maximum payload sets every limit on the way.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from x0_common.settings import CommonSettings
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import authenticate_as

pytestmark = pytest.mark.e2e

SIGN = "/v1/crypto/signatures/sign"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
async def client(stack: StackEndpoints, crypto_worker: int) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process gateway on the real broker; every caller taken as an admin."""
    settings = GatewaySettings(
        common=CommonSettings(
            kafka=stack.kafka_settings(),
            redis={"url": stack.redis_url},  # type: ignore[arg-type]
            postgres={"dsn": stack.postgres_dsn},  # type: ignore[arg-type]
        ),
        replica_id=f"e2e-payload-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=30,
    )
    app = create_app(settings)
    authenticate_as(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", timeout=60
        ) as http:
            yield http


async def secret_key(client: httpx.AsyncClient, algorithm: str) -> tuple[str, str]:
    response = await client.post("/v1/crypto/signatures/keypair", json={"algorithm": algorithm})
    assert response.status_code == 200, response.text
    pair = response.json()
    return pair["public_key"], pair["secret_key"]


def body_of_exactly(size: int, algorithm: str, secret: str) -> bytes:
    """A sign request of exactly ``size`` bytes: the message fills it, spaces pad it."""
    empty = json.dumps({"algorithm": algorithm, "secret_key": secret, "message": ""}).encode()
    room = size - len(empty)
    message = b64(b"m" * (room * 3 // 4))
    body = json.dumps({"algorithm": algorithm, "secret_key": secret, "message": message})
    return body.encode() + b" " * (size - len(body))


async def test_a_35_mib_message_is_signed(client: httpx.AsyncClient) -> None:
    public, secret = await secret_key(client, "ML-DSA-65")
    body = body_of_exactly(int(3.5 * 1024 * 1024), "ML-DSA-65", secret)
    response = await client.post(SIGN, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    signature = response.json()["signature"]
    verified = await client.post(
        "/v1/crypto/signatures/verify",
        content=json.dumps(
            {
                "algorithm": "ML-DSA-65",
                "public_key": public,
                "message": json.loads(body)["message"],
                "signature": signature,
            }
        ),
        headers={"content-type": "application/json"},
    )
    assert verified.status_code == 200, verified.text[:300]
    assert verified.json()["valid"] is True


async def test_the_body_limit_minus_one_byte_is_carried_and_one_byte_over_is_413(
    client: httpx.AsyncClient,
) -> None:
    limit = GatewaySettings().max_body_bytes
    _, secret = await secret_key(client, "ML-DSA-44")
    largest = body_of_exactly(limit - 1, "ML-DSA-44", secret)
    response = await client.post(
        SIGN, content=largest, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:300]
    over = body_of_exactly(limit + 1, "ML-DSA-44", secret)
    refused = await client.post(SIGN, content=over, headers={"content-type": "application/json"})
    assert refused.status_code == 413
    assert refused.json()["code"] == "too_large"


async def test_a_full_ml_dsa_87_sign_batch_and_its_reply_travel(
    client: httpx.AsyncClient,
) -> None:
    """256 secret keys in (~1.7 MB), 256 signatures of 4,627 bytes out (~1.6 MB)."""
    _, secret = await secret_key(client, "ML-DSA-87")
    items = [
        {"algorithm": "ML-DSA-87", "secret_key": secret, "message": b64(f"m{n}".encode())}
        for n in range(256)
    ]
    response = await client.post("/v1/crypto/signatures/sign/batch", json={"items": items})
    assert response.status_code == 200, response.text[:300]
    outcomes = response.json()["items"]
    assert len(outcomes) == 256
    assert all(outcome["result"] is not None for outcome in outcomes), outcomes[0]
