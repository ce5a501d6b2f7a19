"""Who is calling: the authenticated principal the gateway puts on every Kafka message.

The gateway authenticates the caller (API key or JWT), then sends the principal as
the ``x0-principal`` header: compact JSON ``{"tenant", "subject", "scopes"}``. The
workers trust it because only the gateway may write request topics (Kafka ACLs), and
they enforce the tenant in their own storage: every managed key, collection and mesh
belongs to one tenant, and the same name in two tenants is two resources.
"""

from __future__ import annotations

from typing import Annotated, Final, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from x0_common.contract.operation import Scope
from x0_common.errors import Forbidden, Unauthenticated

TENANT_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
TenantId = Annotated[str, StringConstraints(pattern=TENANT_PATTERN), Field(examples=["acme"])]
# Existing data, and callers of a single-tenant deployment, belong to this tenant.
DEFAULT_TENANT: Final = "default"
# Every scope a caller can be granted ("internal" is the services' own).
GRANTABLE_SCOPES: Final[frozenset[str]] = frozenset(get_args(Scope)) - {"internal"}


def qualified(tenant: str, name: str) -> str:
    """A tenant's resource as one label: ``name`` for the default tenant (so a
    single-tenant deployment's labels and folders do not change), ``tenant/name``
    otherwise. Neither tenant ids nor the contract's resource names contain ``/``."""
    return name if tenant == DEFAULT_TENANT else f"{tenant}/{name}"


def unqualified(label: str) -> tuple[str, str]:
    """The ``(tenant, name)`` a :func:`qualified` label stands for."""
    tenant, _, name = label.rpartition("/")
    return (tenant or DEFAULT_TENANT, name)


class Principal(BaseModel):
    """An authenticated caller: its tenant, who it is and what it may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: TenantId
    subject: str = Field(min_length=1, max_length=256)
    scopes: frozenset[Scope]

    def header(self) -> str:
        """The ``x0-principal`` header value."""
        return self.model_dump_json()

    @classmethod
    def from_header(cls, value: str | None) -> Principal:
        """The principal of a message; :class:`Unauthenticated` when there is none or it
        is malformed (its content is not echoed: it is not the caller's to read)."""
        if not value:
            raise Unauthenticated("the request carries no principal")
        try:
            return cls.model_validate_json(value)
        except ValidationError:
            raise Unauthenticated("the request's principal is malformed") from None

    def require(self, scope: Scope) -> None:
        """Raise :class:`Forbidden` unless the principal holds ``scope``."""
        if scope not in self.scopes:
            raise Forbidden(
                f"this operation needs the scope {scope!r}", details={"required_scope": scope}
            )
