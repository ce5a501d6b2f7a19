"""The envelope of every x0 Kafka message: header names and the reply shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    # On replies: "result" or "error", saying what the value holds.
    OUTCOME: Final = "x0-outcome"
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


@dataclass(frozen=True, slots=True)
class Reply:
    """What a responder sends back: a result, or a typed error.

    On the wire the value is the result's JSON itself (or the :class:`ErrorBody`'s)
    and the ``x0-outcome`` header says which, so a gateway can hand a result to its
    HTTP caller without decoding and re-encoding it.
    """

    outcome: Literal["result", "error"]
    body: bytes

    @classmethod
    def of_result(cls, result: BaseModel | None) -> Reply:
        """A successful reply (``{}`` for a handler that returns nothing)."""
        return cls("result", b"{}" if result is None else result.model_dump_json().encode())

    @classmethod
    def of_error(cls, error: ErrorBody) -> Reply:
        """A typed error reply."""
        return cls("error", error.model_dump_json().encode())

    def error(self) -> ErrorBody | None:
        """The typed error, or None for a result."""
        return ErrorBody.model_validate_json(self.body) if self.outcome == "error" else None
