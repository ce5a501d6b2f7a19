"""OIDC/JWT bearer tokens against a JWKS the tests generate: from a file and from a
URL served by a local HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from x0_common.errors import Unavailable
from x0_gateway.auth.caller import InvalidCredentials
from x0_gateway.auth.oidc import JwtVerifier
from x0_gateway.auth.tenants import TenantDirectory
from x0_gateway.settings import JwtSettings

from .auth_support import MemoryKeyStore

pytestmark = [pytest.mark.unit, pytest.mark.security]

ISSUER = "https://idp.example"
AUDIENCE = "x0-gateway"


class Signer:
    """A signing key of the identity provider, and its public JWK."""

    def __init__(self, kid: str, algorithm: str = "RS256") -> None:
        self.kid = kid
        self.algorithm = algorithm
        if algorithm.startswith("ES"):
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            self.jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk |= {"kid": kid, "alg": algorithm, "use": "sig"}

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            "x0_tenant": "acme",
            "scope": "crypto keys:read openid",
        }
        claims |= overrides
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [signer.jwk for signer in signers]}


@pytest.fixture(scope="module")
def rsa_signer() -> Signer:
    return Signer("rsa-1")


@pytest.fixture(scope="module")
def ec_signer() -> Signer:
    return Signer("ec-1", "ES256")


def verifier_for(settings: JwtSettings, store: MemoryKeyStore | None = None) -> JwtVerifier:
    """A verifier whose tenants are ``store``'s (default, acme and lab by default)."""
    tenants = TenantDirectory(store or MemoryKeyStore(), cache_seconds=1)
    return JwtVerifier(settings, tenants)


def settings_for(source: Path | str, **overrides: Any) -> JwtSettings:
    where = {"jwks_file": source} if isinstance(source, Path) else {"jwks_url": source}
    return JwtSettings(issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30, **where, **overrides)


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_signer: Signer, ec_signer: Signer) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(rsa_signer, ec_signer)))
    return path


@pytest.fixture
def verifier(jwks_file: Path) -> JwtVerifier:
    return verifier_for(settings_for(jwks_file))


async def test_a_valid_token_maps_its_claims_to_a_principal(
    verifier: JwtVerifier, rsa_signer: Signer, ec_signer: Signer
) -> None:
    for signer in (rsa_signer, ec_signer):
        caller = await verifier.verify(signer.token())
        assert caller.credential_id == f"jwt:{ISSUER}:user-1"
        assert caller.principal.tenant == "acme"
        assert caller.principal.subject == f"jwt:{ISSUER}:user-1"
        # "openid" is no x0 scope: dropped, not refused.
        assert caller.principal.scopes == {"crypto", "keys:read"}


async def test_scopes_may_come_as_a_list_in_a_claim_of_another_name(
    jwks_file: Path, rsa_signer: Signer
) -> None:
    verifier = verifier_for(settings_for(jwks_file, scope_claim="scp", tenant_claim="org"))
    caller = await verifier.verify(rsa_signer.token(scp=["rag:read", "internal"], org="lab"))
    assert caller.principal.scopes == {"rag:read"}  # "internal" is never granted
    assert caller.principal.tenant == "lab"


async def test_a_token_without_a_tenant_needs_a_default_tenant(
    jwks_file: Path, rsa_signer: Signer
) -> None:
    token = rsa_signer.token(x0_tenant=None)
    with pytest.raises(InvalidCredentials):
        await verifier_for(settings_for(jwks_file)).verify(token)
    caller = await verifier_for(settings_for(jwks_file, default_tenant="default")).verify(token)
    assert caller.principal.tenant == "default"


async def test_a_token_whose_tenant_is_unknown_or_disabled_is_refused(
    jwks_file: Path, rsa_signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant claim must name a tenant of gateway.tenants that is enabled; the
    answer is cached for the verifier's cache period, then asked again."""
    store = MemoryKeyStore()
    verifier = verifier_for(settings_for(jwks_file), store)
    with pytest.raises(InvalidCredentials):
        await verifier.verify(rsa_signer.token(x0_tenant="nobody"))
    # Unknown tenants are cached too: a second token of "nobody" costs no lookup.
    finds = store.tenant_finds
    with pytest.raises(InvalidCredentials):
        await verifier.verify(rsa_signer.token(x0_tenant="nobody"))
    assert store.tenant_finds == finds
    assert (await verifier.verify(rsa_signer.token())).principal.tenant == "acme"
    store.disable("acme")
    # Cached for up to a second (the test's cache period), then refused.
    assert (await verifier.verify(rsa_signer.token())).principal.tenant == "acme"
    clock = time.monotonic() + 1.01
    monkeypatch.setattr(time, "monotonic", lambda: clock)
    with pytest.raises(InvalidCredentials):
        await verifier.verify(rsa_signer.token())


# Times relative to when the test runs (parameters are made at collection).
@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": -31}, id="expired-beyond-leeway"),
        pytest.param({"nbf": 60}, id="not-yet-valid"),
        pytest.param({"iss": "https://evil.example"}, id="wrong-issuer"),
        pytest.param({"aud": "another-api"}, id="wrong-audience"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"sub": None}, id="no-subject"),
        pytest.param({"x0_tenant": "Not A Tenant"}, id="bad-tenant"),
    ],
)
async def test_claims_that_do_not_hold_are_refused(
    verifier: JwtVerifier, rsa_signer: Signer, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    timed = {
        name: now + value if name in {"exp", "nbf"} and isinstance(value, int) else value
        for name, value in claims.items()
    }
    with pytest.raises(InvalidCredentials):
        await verifier.verify(rsa_signer.token(**timed))


async def test_clock_skew_within_the_leeway_is_accepted(
    verifier: JwtVerifier, rsa_signer: Signer
) -> None:
    now = int(time.time())
    await verifier.verify(rsa_signer.token(exp=now - 20, nbf=now + 20))


async def test_a_tampered_token_is_refused(verifier: JwtVerifier, rsa_signer: Signer) -> None:
    header, _, signature = rsa_signer.token().split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "exp": 2**40}).encode()
    ).decode()
    with pytest.raises(InvalidCredentials):
        await verifier.verify(f"{header}.{forged}.{signature}")


async def test_alg_none_is_refused(verifier: JwtVerifier, rsa_signer: Signer) -> None:
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**40, "x0_tenant": "acme"},
        None,
        algorithm="none",
        headers={"kid": rsa_signer.kid},
    )
    with pytest.raises(InvalidCredentials):
        await verifier.verify(unsigned)


async def test_hs256_with_the_public_key_as_secret_is_refused(
    verifier: JwtVerifier, rsa_signer: Signer
) -> None:
    # The algorithm-confusion attack: the public key (known to all) as an HMAC secret.
    public_pem = rsa_signer.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**40, "x0_tenant": "acme"}
    # Signed by hand: pyjwt itself refuses to use a PEM as an HMAC secret.
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_signer.kid}
    signing_input = b".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()) for part in (header, claims)
    )
    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()
    with pytest.raises(InvalidCredentials):
        await verifier.verify(token)


async def test_an_algorithm_other_than_the_keys_own_is_refused(
    verifier: JwtVerifier, rsa_signer: Signer
) -> None:
    # PS256 is in the allow-list and fits an RSA key, but the JWK says RS256.
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**40, "x0_tenant": "acme"},
        rsa_signer.private,
        algorithm="PS256",
        headers={"kid": rsa_signer.kid},
    )
    with pytest.raises(InvalidCredentials, match="does not match"):
        await verifier.verify(token)


def test_symmetric_and_none_algorithms_cannot_be_configured(jwks_file: Path) -> None:
    for algorithms in (["none"], ["HS256"], ["RS256", "HS512"], []):
        with pytest.raises(ValidationError):
            settings_for(jwks_file, algorithms=algorithms)
    with pytest.raises(ValidationError, match="ISSUER"):
        JwtSettings(jwks_file=jwks_file, audience=AUDIENCE)


async def test_an_unknown_kid_rereads_the_file_once_the_provider_rotated(
    tmp_path: Path, rsa_signer: Signer
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(rsa_signer)))
    verifier = verifier_for(settings_for(path, jwks_min_refresh_seconds=0))
    await verifier.verify(rsa_signer.token())
    rotated = Signer("rsa-2")
    with pytest.raises(InvalidCredentials, match="not known"):
        await verifier.verify(rotated.token())
    path.write_text(json.dumps(jwks(rsa_signer, rotated)))
    caller = await verifier.verify(rotated.token())
    assert caller.principal.tenant == "acme"


class JwksServer:
    """A tiny HTTP server serving a JWKS document, counting its fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.fetches += 1
                body = json.dumps(served.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def jwks_server(rsa_signer: Signer) -> Iterator[JwksServer]:
    with JwksServer(jwks(rsa_signer)) as server:
        yield server


async def test_a_served_jwks_is_fetched_once_and_again_on_rotation(
    jwks_server: JwksServer, rsa_signer: Signer
) -> None:
    verifier = verifier_for(settings_for(jwks_server.url, jwks_min_refresh_seconds=0.2))
    for _ in range(5):
        await verifier.verify(rsa_signer.token())
    assert jwks_server.fetches == 1
    rotated = Signer("rsa-2")
    jwks_server.document = jwks(rotated)  # the old key is retired at once
    await asyncio.sleep(0.25)
    await verifier.verify(rotated.token())
    assert jwks_server.fetches == 2
    with pytest.raises(InvalidCredentials):
        await verifier.verify(rsa_signer.token())


async def test_made_up_kids_do_not_make_the_gateway_hammer_the_provider(
    jwks_server: JwksServer, rsa_signer: Signer
) -> None:
    verifier = verifier_for(settings_for(jwks_server.url, jwks_min_refresh_seconds=60))
    await verifier.verify(rsa_signer.token())
    for number in range(20):
        with pytest.raises(InvalidCredentials):
            await verifier.verify(Signer(f"made-up-{number}").token())
    assert jwks_server.fetches == 1


async def test_an_unreachable_provider_is_503_not_401(rsa_signer: Signer) -> None:
    verifier = verifier_for(settings_for("http://127.0.0.1:1/jwks.json"))
    with pytest.raises(Unavailable):
        await verifier.verify(rsa_signer.token())
