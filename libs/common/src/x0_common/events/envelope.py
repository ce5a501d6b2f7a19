"""The envelope of every x0 Kafka message: header names and the reply shape."""

from __future__ import annotations

from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Headers:
    """Kafka header names of the x0 message contract (DESIGN.md)."""

    TRACEPARENT: Final = "traceparent"
    TRACESTATE: Final = "tracestate"
    BAGGAGE: Final = "baggage"
    TYPE: Final = "x0-type"
    CORRELATION_ID: Final = "correlation_id"
    REPLY_TO: Final = "reply_to"
    DEADLINE: Final = "x0-deadline"
    PRINCIPAL: Final = "x0-principal"
    # Dead letters carry why and where from, so an operator can replay them.
    DLQ_REASON: Final = "x0-dlq-reason"
    DLQ_DETAIL: Final = "x0-dlq-detail"
    DLQ_ORIGIN: Final = "x0-dlq-origin"


class ErrorBody(BaseModel):
    """A typed error: a stable ``code``, a human ``message`` and structured ``details``."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(examples=["invalid_input"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Reply(BaseModel):
    """What a responder sends back: exactly one of ``result`` or ``error``."""

    model_config = ConfigDict(frozen=True)

    result: dict[str, Any] | None = None
    error: ErrorBody | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.result is None) == (self.error is None):
            msg = "a reply holds exactly one of result or error"
            raise ValueError(msg)
        return self
