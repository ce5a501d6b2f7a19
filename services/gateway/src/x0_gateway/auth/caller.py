"""What authentication yields (:class:`Caller`), and its two ways to fail.

    Unauthenticated (x0_common)   401, with a ``WWW-Authenticate: Bearer`` challenge
    ├── MissingCredentials        no ``Authorization`` header: the bare challenge
    └── InvalidCredentials        malformed, unknown, revoked or expired: ``invalid_token``

Why a credential is invalid is not told (RFC 6750 leaves it to the server): the
caller learns nothing about which keys exist or were revoked.
"""

from __future__ import annotations

from dataclasses import dataclass

from x0_common.errors import Unauthenticated
from x0_common.principal import Principal


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its principal, and which credential it showed.

    ``credential_id`` is an API key's id, or ``jwt:<iss>:<sub>`` for a token; rate
    limits and audit records are kept per credential.
    """

    principal: Principal
    credential_id: str


class MissingCredentials(Unauthenticated):
    """The request carries no credentials."""

    def __init__(self) -> None:
        super().__init__(
            "this operation needs credentials: Authorization: Bearer <API key or token>"
        )


class InvalidCredentials(Unauthenticated):
    """The credentials are malformed, unknown, revoked or expired."""

    def __init__(self, message: str = "the credentials are not valid") -> None:
        super().__init__(message)
