"""Principals for tests: a caller of a tenant, its ``x0-principal`` header, a request
context carrying it, and a requester that sends one.

Workers refuse a request without a principal (``Unauthenticated``); the gateway puts
its authenticated caller's on every message. Tests that talk to a worker straight
over Kafka, or call its handlers, send one of these.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

from pydantic import BaseModel

from x0_common.contract.operation import Scope
from x0_common.kafka.requester import Requester
from x0_common.kafka.responder import RequestContext
from x0_common.principal import DEFAULT_TENANT, GRANTABLE_SCOPES, Principal

__all__ = ["ALL_SCOPES", "AsPrincipal", "principal", "principal_header", "request_context"]

# Every scope a credential can be granted.
ALL_SCOPES: Final = frozenset(cast("Iterable[Scope]", GRANTABLE_SCOPES))


def principal(
    tenant: str = DEFAULT_TENANT,
    *,
    subject: str = "test",
    scopes: Iterable[Scope] = ALL_SCOPES,
) -> Principal:
    """A caller of ``tenant`` holding ``scopes`` (every grantable scope by default)."""
    return Principal(tenant=tenant, subject=subject, scopes=frozenset(scopes))


def principal_header(
    tenant: str = DEFAULT_TENANT,
    *,
    subject: str = "test",
    scopes: Iterable[Scope] = ALL_SCOPES,
) -> str:
    """The ``x0-principal`` header of :func:`principal`."""
    return principal(tenant, subject=subject, scopes=scopes).header()


def request_context(
    caller: Principal | None = None,
    *,
    message_type: str = "test",
    correlation_id: str | None = None,
    seconds_left: float | None = 60.0,
    headers: Mapping[str, str] | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> RequestContext:
    """The context the responder builds for a request of ``caller`` (:func:`principal`
    by default); a new correlation id unless one is given (a redelivery)."""
    return RequestContext(
        message_type=message_type,
        correlation_id=correlation_id or uuid.uuid4().hex,
        deadline=None if seconds_left is None else time.time() + seconds_left,
        principal=caller or principal(),
        headers=headers or {},
        partition=partition,
        offset=offset,
    )


class AsPrincipal:
    """A :class:`Requester` that sends ``principal_header`` on every message that names
    none: what the gateway does for its authenticated caller.

    Every other attribute is the wrapped requester's.
    """

    def __init__(self, requester: Requester, principal_header: str) -> None:
        self._requester = requester
        self._principal = principal_header

    def __getattr__(self, name: str) -> Any:
        return getattr(self._requester, name)

    async def request(
        self, topic: str, message_type: str, payload: BaseModel, **options: Any
    ) -> dict[str, Any]:
        """:meth:`Requester.request`, with the principal."""
        options["principal"] = options.get("principal") or self._principal
        return await self._requester.request(topic, message_type, payload, **options)

    async def request_raw(
        self, topic: str, message_type: str, payload: BaseModel, **options: Any
    ) -> bytes:
        """:meth:`Requester.request_raw`, with the principal."""
        options["principal"] = options.get("principal") or self._principal
        return await self._requester.request_raw(topic, message_type, payload, **options)

    async def publish(
        self, topic: str, message_type: str, payload: BaseModel, **options: Any
    ) -> str:
        """:meth:`Requester.publish`, with the principal."""
        options["principal"] = options.get("principal") or self._principal
        return await self._requester.publish(topic, message_type, payload, **options)
