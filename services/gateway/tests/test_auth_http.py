"""Authentication and authorisation as HTTP callers see them: 401 and 403 problems
with their RFC 6750 challenges, the principal passed on to Kafka, the OpenAPI document.

The key store is in memory and the requester records what it is asked: neither is
the subject here (the real ones are in tests/e2e/test_authorisation_matrix.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from x0_common.contract import OPERATIONS
from x0_common.principal import Principal
from x0_common.settings import CommonSettings
from x0_gateway.app import create_app
from x0_gateway.auth.authenticator import Authenticator
from x0_gateway.auth.key_verifier import ApiKeyVerifier
from x0_gateway.auth.oidc import JwtVerifier
from x0_gateway.auth.tenants import TenantDirectory
from x0_gateway.problems import PROBLEM_JSON
from x0_gateway.settings import DEVELOPMENT_PEPPER, GatewaySettings, JwtSettings

from .auth_support import PEPPER, MemoryKeyStore
from .http_support import in_process_client, unit_settings
from .test_oidc import AUDIENCE, ISSUER, Signer

pytestmark = [pytest.mark.unit, pytest.mark.security]


class RecordingRequester:
    """Answers every request with ``{}`` and records the principal it was given."""

    ready = False

    def __init__(self) -> None:
        self.principals: list[str | None] = []

    async def kafka_reachable(self) -> bool:
        return False

    async def request_raw(self, *_: object, **options: Any) -> bytes:
        self.principals.append(options.get("principal"))
        return b'{"algorithms": []}'


@pytest.fixture
def store() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def signer() -> Signer:
    return Signer("rsa-1")


@pytest.fixture
def app(store: MemoryKeyStore, signer: Signer, tmp_path: Path) -> FastAPI:
    settings = unit_settings()
    application = create_app(settings)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [signer.jwk]}))
    tokens = JwtVerifier(
        JwtSettings(jwks_file=jwks, issuer=ISSUER, audience=AUDIENCE),
        TenantDirectory(store, cache_seconds=1),  # type: ignore[arg-type]
    )
    keys = ApiKeyVerifier(store, PEPPER, cache_seconds=1, refuse_development_keys=False)  # type: ignore[arg-type]
    application.state.authenticator = Authenticator(keys, tokens)
    application.state.requester = RecordingRequester()
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(app) as http:
        yield http


ALGORITHMS = "/v1/crypto/algorithms"  # scope "crypto"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_credentials_is_a_401_problem_with_the_bare_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(ALGORITHMS)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == 'Bearer realm="x0"'
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer x0_live_" + "A" * 49,  # the checksum does not match
        "Bearer x0_live_short",
        "Bearer not-a-key-or-token",
        "Bearer a.b.c",
        "Bearer ",
        "Basic " + base64.b64encode(b"user:password").decode(),
    ],
)
async def test_bad_credentials_are_401_invalid_token(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get(ALGORITHMS, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="x0", error="invalid_token"'


async def test_a_key_without_the_scope_is_403_insufficient_scope(
    client: httpx.AsyncClient, store: MemoryKeyStore
) -> None:
    secret, _ = store.add(scopes=["rag:read"])
    response = await client.get("/v1/crypto/keys", headers=bearer(secret))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == (
        'Bearer realm="x0", error="insufficient_scope", scope="keys:read"'
    )
    assert response.json()["details"] == {"required_scope": "keys:read"}


async def test_the_principal_travels_with_the_request(
    app: FastAPI, client: httpx.AsyncClient, store: MemoryKeyStore
) -> None:
    secret, key = store.add(scopes=["crypto"], tenant="acme")
    response = await client.get(ALGORITHMS, headers=bearer(secret))
    assert response.status_code == 200, response.text
    (sent,) = app.state.requester.principals
    assert Principal.from_header(sent) == Principal(
        tenant="acme", subject=f"key:{key.id}", scopes=frozenset({"crypto"})
    )


async def test_a_jwt_is_accepted_with_the_scopes_it_carries(
    app: FastAPI, client: httpx.AsyncClient, signer: Signer
) -> None:
    response = await client.get(ALGORITHMS, headers=bearer(signer.token(scope="crypto")))
    assert response.status_code == 200, response.text
    (sent,) = app.state.requester.principals
    assert Principal.from_header(sent).subject == f"jwt:{ISSUER}:user-1"
    response = await client.get("/v1/crypto/keys", headers=bearer(signer.token(scope="crypto")))
    assert response.status_code == 403


async def test_credentials_are_checked_before_the_body(client: httpx.AsyncClient) -> None:
    # An anonymous caller learns nothing about what a route accepts.
    response = await client.post("/v1/crypto/kem/keypair", json={"algorithm": 7})
    assert response.status_code == 401


async def test_health_needs_no_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/health/ready")).status_code == 503  # not started, not 401


async def test_the_openapi_document_names_the_scheme_and_each_operations_scope(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    paths = document["paths"]
    for operation in OPERATIONS:
        if operation.http is None:
            continue
        entry = paths[operation.http.path][operation.http.method.lower()]
        assert entry["security"] == [{"bearer": [operation.scope]}], operation.name
        assert {"401", "403"} <= set(entry["responses"]), operation.name
    for path, methods in paths.items():
        for entry in methods.values():
            if path.startswith("/v1/admin"):
                assert entry["security"] == [{"bearer": ["admin"]}], path
            if path.startswith("/health"):
                assert "security" not in entry, path


def test_the_development_pepper_is_refused_in_production(tmp_path: Path) -> None:
    production = CommonSettings(
        environment="production",
        postgres={"dsn": "postgresql://u:secret@db/x0"},
        kafka={"sealing_key": base64.urlsafe_b64encode(bytes(range(2, 34))).decode()},
    )
    with pytest.raises(ValidationError, match="PEPPER"):
        GatewaySettings(common=production)
    unpadded = tmp_path / "pepper"
    unpadded.write_text(DEVELOPMENT_PEPPER.rstrip("=") + "\n")
    with pytest.raises(ValidationError, match="PEPPER"):
        GatewaySettings(common=production, api_key_pepper_file=unpadded)
    real = base64.urlsafe_b64encode(bytes(range(1, 33))).decode()
    audit = {"hmac_key": base64.urlsafe_b64encode(bytes(range(3, 35))).decode()}
    with pytest.raises(ValidationError, match="AUDIT__HMAC_KEY"):
        GatewaySettings(common=production, api_key_pepper=real)
    settings = GatewaySettings(common=production, api_key_pepper=real, audit=audit)
    assert settings.pepper() == bytes(range(1, 33))
    assert settings.audit.key() == bytes(range(3, 35))
