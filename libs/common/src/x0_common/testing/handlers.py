"""Call a worker's handlers without Kafka: what ``register`` functions register."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from x0_common.contract.operation import Operation
from x0_common.kafka.responder import Handler, RequestContext


class CapturingResponder:
    """Stands in for a :class:`~x0_common.kafka.Responder` in ``register(responder, deps)``
    and keeps each handler with its operation's request model, keyed by ``x0-type``."""

    def __init__(self) -> None:
        self.handlers: dict[str, tuple[type[BaseModel], Handler]] = {}

    def operation(self, operation: Operation) -> Callable[[Handler], Handler]:
        """Keep the handler, as the real responder's decorator does."""

        def register(handler: Handler) -> Handler:
            self.handlers[operation.message_type] = (operation.request, handler)
            return handler

        return register

    async def call(
        self, message_type: str, payload: dict[str, Any], context: RequestContext
    ) -> BaseModel | None:
        """Validate ``payload`` as the responder would and run the handler."""
        model, handler = self.handlers[message_type]
        return await handler(model.model_validate(payload), context)
