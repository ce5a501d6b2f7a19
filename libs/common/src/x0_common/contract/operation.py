"""What one operation of the contract is: a row of a domain's table.

An :class:`Operation` says everything the parts need to agree on: the ``x0-type``
and the models on Kafka, the topic, the HTTP route that exposes it, the errors it
may answer and the scope a caller needs. The gateway's routes, the workers' handler
registrations, the AsyncAPI and OpenAPI documents and the client are all built from
these rows, so none of them restates a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from x0_common.errors import X0Error

# Who may call an operation; enforced by the gateway and the workers (access control).
Scope = Literal[
    "crypto",
    "keys:read",
    "keys:write",
    "keys:use",
    "keys:export",
    "keys:admin",
    "rag:read",
    "rag:write",
    "telemetry:read",
    "telemetry:write",
    "admin",
    # Only the services themselves: no HTTP route, and no caller's credential grants it.
    "internal",
]
Method = Literal["GET", "POST", "PATCH", "PUT", "DELETE"]
# request: the caller waits for a typed reply on its reply topic.
# publish: one-way; the caller is answered once Kafka holds the message.
Delivery = Literal["request", "publish"]


@dataclass(frozen=True, slots=True)
class Http:
    """The HTTP route of an operation.

    Path parameters fill the request field of the same name, or the one ``fields``
    maps them to (``{"name": "collection"}``). The remaining request fields come from
    the JSON body on POST, PUT and PATCH, and from the query string otherwise.
    """

    method: Method
    path: str
    status: int = 200
    fields: dict[str, str] = field(default_factory=dict)
    # Other success statuses the route may answer, with what each means.
    other_statuses: dict[int, str] = field(default_factory=dict)

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """The ``{names}`` in the path, in order."""
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))

    def field_of(self, parameter: str) -> str:
        """The request field a path parameter fills."""
        return self.fields.get(parameter, parameter)

    @property
    def path_fields(self) -> frozenset[str]:
        """The request fields the path fills."""
        return frozenset(self.field_of(p) for p in self.path_parameters)

    @property
    def has_body(self) -> bool:
        """True when the remaining fields travel as a JSON body."""
        return self.method in {"POST", "PUT", "PATCH"}


# eq=False: a row is itself, hashed by identity, so rows can key the workers' tables.
@dataclass(frozen=True, slots=True, eq=False)
class Operation:
    """One operation: its message on Kafka, its route, its errors and its scope."""

    # The client's method name and the OpenAPI operation id, e.g. ``kem_encapsulate``.
    name: str
    message_type: str
    topic: str
    request: type[BaseModel]
    # What the HTTP caller gets back; None for messages that nobody answers.
    result: type[BaseModel] | None
    summary: str
    scope: Scope
    http: Http | None = None
    # What the worker may answer besides the result: their codes map to HTTP statuses.
    errors: tuple[type[X0Error], ...] = ()
    delivery: Delivery = "request"
    # For publish operations: what the Kafka key is (one key's messages stay in order).
    key: str | None = None
    # Upstream producers may publish it straight to Kafka (it is in the AsyncAPI).
    producers: bool = False
    # False for a route that travels as other rows' messages (a batch fanned out).
    on_kafka: bool = True

    def __post_init__(self) -> None:
        if self.http is not None:
            unknown = self.http.path_fields - set(self.request.model_fields)
            if unknown:
                msg = f"{self.name}: path fills fields {sorted(unknown)} the request lacks"
                raise ValueError(msg)
        if self.scope == "internal" and self.http is not None:
            msg = f"{self.name}: an internal operation has no HTTP route"
            raise ValueError(msg)


def by_type(operations: tuple[Operation, ...]) -> dict[str, Operation]:
    """The operations keyed by ``x0-type``; a type declared twice is a mistake."""
    table: dict[str, Operation] = {}
    for operation in operations:
        if operation.message_type in table:
            msg = f"x0-type {operation.message_type} is declared twice"
            raise ValueError(msg)
        table[operation.message_type] = operation
    return table
