"""OIDC/JWT bearer tokens, checked against the identity provider's JWKS (pyjwt).

- The JWKS comes from a URL or a file (:class:`JwksCache`). It is read at first use,
  again after ``jwks_max_age_seconds``, and again when a token names a ``kid`` it
  lacks (the provider rotated its keys), but never more often than every
  ``jwks_min_refresh_seconds``: made-up kids cannot turn the gateway into a client
  hammering the provider. A failed read keeps the keys already known.
- The token's ``alg`` must be in the allow-list (asymmetric only: no ``none``, no
  ``HS*``, so a public key is never taken for an HMAC secret) and match the JWK's own
  ``alg`` when it has one; pyjwt checks that the key type fits the algorithm.
- ``exp``, ``iss``, ``aud`` and ``sub`` are required; ``exp``, ``nbf`` and ``iat`` are
  checked with ``leeway_seconds`` of clock skew.
- Claims map to a principal: the tenant from ``tenant_claim`` (or ``default_tenant``),
  the scopes from ``scope_claim`` (a space-separated string, or a list) kept to the
  grantable ones, the subject ``jwt:<iss>:<sub>``.
- The tenant must be one of ``gateway.tenants``, and enabled
  (:class:`~x0_gateway.auth.tenants.TenantDirectory`): a token naming another is
  refused like any invalid token (401 ``invalid_token``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any

import jwt
from pydantic import ValidationError

from x0_common.errors import Unavailable
from x0_common.principal import GRANTABLE_SCOPES, Principal
from x0_gateway.auth.caller import Caller, InvalidCredentials
from x0_gateway.auth.tenants import TenantDirectory
from x0_gateway.settings import JwtSettings

logger = logging.getLogger(__name__)

_FETCH_TIMEOUT_SECONDS = 5.0


def _fetch(url: str) -> dict[str, Any]:
    # The scheme is http(s) by the settings' pattern.
    with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        document: dict[str, Any] = json.loads(response.read())
    return document


class JwksCache:
    """The signing keys of the identity provider, by ``kid``."""

    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._read_at = float("-inf")  # monotonic
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key a token's header names; :class:`InvalidCredentials` when the JWKS
        has none of that id even after a refresh allowed now."""
        stale = time.monotonic() - self._read_at >= self._settings.jwks_max_age_seconds
        if stale or kid not in self._keys:
            await self._refresh(forced_by_kid=not stale)
        if not self._keys:
            raise Unavailable("the identity provider's keys cannot be read")
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        found = self._keys.get(kid)
        if found is None:
            raise InvalidCredentials("the token's signing key is not known")
        return found

    async def _refresh(self, *, forced_by_kid: bool) -> None:
        async with self._lock:
            since = time.monotonic() - self._read_at
            if forced_by_kid and since < self._settings.jwks_min_refresh_seconds:
                return
            if not forced_by_kid and since < self._settings.jwks_max_age_seconds:
                return  # another request refreshed it while this one waited
            try:
                document = await asyncio.to_thread(self._read)
                keys = jwt.PyJWKSet.from_dict(document).keys
            except (OSError, ValueError, jwt.PyJWTError) as error:
                self._read_at = time.monotonic()  # retried after the minimum interval
                logger.warning("could not read the JWKS", extra={"error": type(error).__name__})
                return
            self._keys = {key.key_id: key for key in keys if key.public_key_use in (None, "sig")}
            self._read_at = time.monotonic()

    def _read(self) -> dict[str, Any]:
        if self._settings.jwks_file is not None:
            document: dict[str, Any] = json.loads(self._settings.jwks_file.read_text())
            return document
        assert self._settings.jwks_url is not None
        return _fetch(self._settings.jwks_url)


class JwtVerifier:
    """Turns a signed token into its :class:`Caller`, or raises :class:`InvalidCredentials`."""

    def __init__(self, settings: JwtSettings, tenants: TenantDirectory) -> None:
        assert settings.enabled, "no JWKS configured"
        self._settings = settings
        self._tenants = tenants
        self._jwks = JwksCache(settings)
        self._algorithms = frozenset(settings.algorithms)

    async def verify(self, token: str) -> Caller:
        """The caller the token names, once its signature and claims hold."""
        settings = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidCredentials from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise InvalidCredentials("the token's algorithm is not allowed")
        kid = header.get("kid")
        key = await self._jwks.key(kid if isinstance(kid, str) else None)
        # The JWK's own "alg" as given (algorithm_name would be inferred when absent).
        if key._jwk_data.get("alg", algorithm) != algorithm:
            raise InvalidCredentials("the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            raise InvalidCredentials from None
        caller = self._caller(claims)
        # Last: only a token that holds costs a lookup (then cached).
        await self._tenants.require_enabled(caller.principal.tenant)
        return caller

    def _caller(self, claims: dict[str, Any]) -> Caller:
        settings = self._settings
        tenant = claims.get(settings.tenant_claim, settings.default_tenant)
        granted = claims.get(settings.scope_claim, "")
        if isinstance(granted, str):
            granted = granted.split()
        if not isinstance(granted, list):
            raise InvalidCredentials("the token's scope claim is neither a string nor a list")
        scopes = {scope for scope in granted if scope in GRANTABLE_SCOPES}
        credential_id = f"jwt:{claims['iss']}:{claims['sub']}"
        try:
            principal = Principal.model_validate(
                {"tenant": tenant, "subject": credential_id, "scopes": scopes}
            )
        except ValidationError:
            raise InvalidCredentials("the token names no valid tenant or subject") from None
        return Caller(principal, credential_id)
