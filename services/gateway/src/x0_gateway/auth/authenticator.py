"""One entry point for every credential: ``Authorization: Bearer <API key or JWT>``.

Only the ``Authorization`` header is read (no ``X-API-Key``, no query parameter):
one place where a credential travels, the one that proxies and log formats already
treat as secret. A token with an API key's prefix is an API key; any other token is
a JWT when tokens are configured, and refused otherwise.
"""

from __future__ import annotations

from x0_gateway.auth import apikeys
from x0_gateway.auth.caller import Caller, InvalidCredentials, MissingCredentials
from x0_gateway.auth.key_verifier import ApiKeyVerifier
from x0_gateway.auth.oidc import JwtVerifier

_BEARER = "bearer"


class Authenticator:
    """Who is calling, from the ``Authorization`` header's value."""

    def __init__(self, api_keys: ApiKeyVerifier, tokens: JwtVerifier | None = None) -> None:
        self.api_keys = api_keys
        self.tokens = tokens

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller, or :class:`MissingCredentials` / :class:`InvalidCredentials`."""
        if not authorization:
            raise MissingCredentials
        scheme, _, credentials = authorization.partition(" ")
        token = credentials.strip()
        if scheme.lower() != _BEARER or not token:
            raise InvalidCredentials("send credentials as Authorization: Bearer <credential>")
        if apikeys.looks_like_key(token):
            return await self.api_keys.verify(token)
        if self.tokens is not None and token.count(".") == 2:
            return await self.tokens.verify(token)
        raise InvalidCredentials
