"""The worker side of request/reply: typed handlers on a FastStream subscriber.

A :class:`Responder` owns one topic. Handlers register per message type
(``x0-type`` header) and receive the payload already validated as the pydantic
model their first parameter names. For every message, in order:

1. Poison (undecodable, unknown type, wrong schema, no correlation id where a
   reply is due) goes to ``<topic>.dlq`` with the reason in headers; when the
   caller can be told, it also gets a typed error reply.
2. Who sent it: the ``x0-principal`` header is parsed into a
   :class:`~x0_common.principal.Principal` that handlers get in their context. No
   principal, or a malformed one, is refused with ``Unauthenticated``; one without
   the operation's scope with ``Forbidden`` (``internal`` rows need a principal but
   no scope). A request is answered with the typed error; a one-way message, which
   nobody would hear about, is dead-lettered (reason ``unauthenticated`` or
   ``forbidden``). Rows upstream producers publish straight to Kafka
   (``producers``) may come without a principal when the responder names an
   ``anonymous_tenant``: they belong to it.
3. A request whose ``x0-deadline`` has passed is dropped and counted (only where a
   reply is due: a ``replies=False`` responder ignores deadlines, it must not lose
   an ingest because it waited in the topic).
4. The handler runs. :class:`~x0_common.errors.Unavailable` is retried with
   jittered exponential backoff inside the deadline; another
   :class:`~x0_common.errors.X0Error` becomes a typed error reply; any other
   exception is a bug: a generic ``internal`` error reply, and the message is
   dead-lettered for inspection. An ``on_dead_letter`` hook may act on every
   message before it is dead-lettered (a writer publishes what replicas need).
5. The reply is published (``acks=all``, idempotent) to ``reply_to`` with the
   correlation id echoed, in a task, so the next message need not wait for the
   broker; the offset is committed only once that publish is acknowledged.

FastStream's own acknowledgement is off (``AckPolicy.MANUAL``): offsets are
committed by :class:`~x0_common.kafka.offsets.OffsetCommitter`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel, ValidationError

from x0_common.contract.operation import Operation
from x0_common.errors import (
    InternalError,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
    X0Error,
)
from x0_common.events.envelope import ErrorBody, Headers, Reply
from x0_common.kafka.consumer import Consumer, RetryPolicy, principal_of
from x0_common.kafka.dead_letters import origin
from x0_common.kafka.offsets import OffsetCommitter
from x0_common.kafka.sealing import SEAL_HEADER, SealError
from x0_common.metrics import ResponderMetrics
from x0_common.principal import DEFAULT_TENANT, Principal
from x0_common.settings import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler may know about the message besides its payload."""

    message_type: str
    correlation_id: str
    deadline: float | None
    # Who sent it (checked against the operation's scope before the handler runs).
    principal: Principal
    headers: Mapping[str, str]
    # Where the message sits in its topic (ingest writers version their effects by it).
    partition: int | None = None
    offset: int | None = None

    @property
    def tenant(self) -> str:
        """The tenant whose resources the message may touch: the principal's."""
        return self.principal.tenant

    def remaining(self) -> float | None:
        """Seconds left before the caller stops waiting, or None without a deadline."""
        return None if self.deadline is None else self.deadline - time.time()


# The context's principal where a responder does not authenticate (a test's echo).
NOBODY: Final = Principal(tenant=DEFAULT_TENANT, subject="anonymous", scopes=frozenset())


Handler = Callable[[Any, RequestContext], Awaitable[BaseModel | None]]
# Called with a message and the reason just before it is dead-lettered; it must not
# raise (failures are logged) and its effect must be durable when it returns.
DeadLetterHook = Callable[[KafkaMessage, str], Awaitable[None]]


class _Refused(Exception):
    """The sender may not do this: no (valid) principal, or not the scope."""

    def __init__(self, error: X0Error) -> None:
        super().__init__(error.code)
        self.error = error


class _Poison(Exception):
    def __init__(self, reason: str, detail: str, reply_error: X0Error | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.reply_error = reply_error


class Responder(Consumer):
    """Runs typed handlers for one topic and answers on ``reply_to``."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        topic: str,
        group_id: str,
        settings: KafkaSettings,
        metrics: ResponderMetrics,
        replies: bool = True,
        retry: RetryPolicy | None = None,
        partitions: int = 1,
        on_dead_letter: DeadLetterHook | None = None,
        anonymous_tenant: str | None = None,
        authenticate: bool = True,
    ) -> None:
        """``anonymous_tenant``: the tenant of messages upstream producers publish without
        a principal (rows with ``producers`` only). ``authenticate=False`` is for a
        responder that holds no tenant's data and checks nobody (the request/reply
        core's echo worker): its handlers get the sender's principal, or :data:`NOBODY`.
        """
        self._offsets = OffsetCommitter(settings.commit_interval_ms / 1000)
        super().__init__(
            broker,
            topic=topic,
            group_id=group_id,
            settings=settings,
            metrics=metrics,
            listener=self._offsets,
            partitions=partitions,
            retry=retry,
            retention_ms=settings.request_topic_retention_ms,
        )
        # A responder that answers takes only sealed requests and seals its replies:
        # no secret sits in Kafka in the clear, and only holders of the sealing key
        # are answered. A one-way responder (an ingest log) takes producers' messages.
        self._sealer = settings.sealer() if replies else None
        self._replies = replies
        self._on_dead_letter = on_dead_letter
        self._anonymous_tenant = anonymous_tenant
        self._authenticate = authenticate
        self._handlers: dict[str, tuple[Operation, Handler]] = {}

    def operation(self, operation: Operation) -> Callable[[Handler], Handler]:
        """Register the handler of a contract ``operation``; its first parameter is typed
        with the operation's request model, which the payload is validated against."""

        def register(handler: Handler) -> Handler:
            # A handler typed with another model is a wiring mistake: catch it at start-up.
            hints = typing.get_type_hints(handler)
            hints.pop("return", None)
            model = next(iter(hints.values()), operation.request)
            if model not in {operation.request, Any}:
                expected = operation.request.__name__
                msg = f"{handler.__name__}: the first parameter must be {expected}"
                raise TypeError(msg)
            self._handlers[operation.message_type] = (operation, handler)
            return handler

        return register

    @property
    def handled_types(self) -> frozenset[str]:
        """The ``x0-type`` values this responder has handlers for."""
        return frozenset(self._handlers)

    def require(self, operations: Iterable[Operation]) -> None:
        """Fail at start-up unless every operation on this topic has a handler."""
        missing = sorted(
            op.name
            for op in operations
            if op.topic == self.topic and op.message_type not in self._handlers
        )
        if missing:
            msg = f"no handler on {self.topic} for: {', '.join(missing)}"
            raise RuntimeError(msg)

    async def close(self) -> None:
        """Commit what is done; call before the broker stops (FastStream ``on_shutdown``)."""
        await self._offsets.close()

    async def _consume(self, message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        headers = message.headers
        try:
            work = await self._process(message, headers.get(Headers.TYPE, ""), headers)
        except Exception:
            # Never leave a message untracked: the committer would skip past it.
            logger.exception("dead-lettering a message that could not be processed")
            work = await self._dead_letter(message, "handler_error", "unexpected failure")
        await self._offsets.track(
            message.consumer, record.topic, record.partition, record.offset, work
        )

    async def _process(
        self, message: KafkaMessage, message_type: str, headers: Mapping[str, str]
    ) -> asyncio.Task[None] | None:
        """Handle one message; return the task confirming its outcome's publish, if any.

        Replies are handed to the producer at once but their acknowledgement is
        awaited in a task, so the next message need not wait for the broker and
        many replies share one produce request; the offset committer waits instead.
        """
        type_label = message_type if message_type in self._handlers else "unknown"
        try:
            handler, payload, context = self._decode(message, message_type, headers)
        except _Refused as refused:
            return await self._refuse(message, type_label, headers, refused.error)
        except _Poison as poison:
            replied = None
            if poison.reply_error is not None:
                replied = await self._reply(headers, _error_reply(poison.reply_error), None)
            return _both(replied, await self._dead_letter(message, poison.reason, poison.detail))

        if context.deadline is not None and context.deadline < time.time():
            self._metrics.expired.labels(self._metrics.service, type_label).inc()
            return None

        started = time.perf_counter()
        reply, dead_letter_reason = await self._run(handler, payload, context)
        self._metrics.duration.labels(self._metrics.service, type_label).observe(
            time.perf_counter() - started
        )
        error = reply.error()
        outcome = "ok" if error is None else error.code
        self._metrics.handled.labels(self._metrics.service, type_label, outcome).inc()
        replied = await self._reply(headers, reply, context.deadline) if self._replies else None
        parked: asyncio.Task[None] | None = None
        if dead_letter_reason is not None:
            parked = await self._dead_letter(message, dead_letter_reason, outcome)
        return _both(replied, parked)

    def _decode(
        self, message: KafkaMessage, message_type: str, headers: Mapping[str, str]
    ) -> tuple[Handler, BaseModel, RequestContext]:
        correlation_id = headers.get(Headers.CORRELATION_ID, "")
        can_reply = self._replies and bool(correlation_id and headers.get(Headers.REPLY_TO))
        if self._replies and not correlation_id:
            raise _Poison("missing_correlation_id", "no correlation_id header")
        if message_type not in self._handlers:
            error = ValidationFailed("unknown message type", details={"type": message_type[:100]})
            raise _Poison("unknown_type", message_type[:100], error if can_reply else None)
        operation, handler = self._handlers[message_type]
        body = self._open(message.body, headers, can_reply)
        principal = self._principal(headers, operation)
        try:
            payload = operation.request.model_validate_json(body)
        except ValidationError as invalid:
            # Inputs are left out: a payload may carry key material.
            errors = invalid.errors(include_input=False, include_url=False, include_context=False)
            undecodable = any(e["type"] == "json_invalid" for e in errors)
            reason = "undecodable" if undecodable else "schema_mismatch"
            error = ValidationFailed(
                "the payload does not match the message schema",
                details={"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors]},
            )
            raise _Poison(reason, _summarise(errors), error if can_reply else None) from None
        deadline = headers.get(Headers.DEADLINE)
        try:
            deadline_s = int(deadline) / 1000 if deadline else None
        except ValueError:
            raise _Poison("schema_mismatch", "x0-deadline is not unix milliseconds") from None
        record = message.raw_message
        assert not isinstance(record, tuple)
        context = RequestContext(
            message_type=message_type,
            correlation_id=correlation_id,
            # A deadline bounds how long a caller waits for a reply; with no reply due
            # (an ingest log), dropping an "expired" message would silently lose it.
            deadline=deadline_s if self._replies else None,
            principal=principal,
            headers=headers,
            partition=record.partition,
            offset=record.offset,
        )
        return handler, payload, context

    def _principal(self, headers: Mapping[str, str], operation: Operation) -> Principal:
        try:
            return principal_of(headers, operation, anonymous_tenant=self._anonymous_tenant)
        except X0Error as error:
            if not self._authenticate:
                try:
                    return Principal.from_header(headers.get(Headers.PRINCIPAL))
                except X0Error:
                    return NOBODY
            raise _Refused(error) from None

    async def _refuse(
        self, message: KafkaMessage, type_label: str, headers: Mapping[str, str], error: X0Error
    ) -> asyncio.Task[None] | None:
        """Answer a refused request with its typed error; dead-letter a refused one-way
        message (nobody would hear of it otherwise). Never logs the principal."""
        service = self._metrics.service
        self._metrics.failed.labels(service, type_label, error.code).inc()
        self._metrics.handled.labels(service, type_label, error.code).inc()
        if self._replies:
            deadline = headers.get(Headers.DEADLINE)
            give_up_at = int(deadline) / 1000 if deadline and deadline.isdigit() else None
            return await self._reply(headers, _error_reply(error), give_up_at)
        return await self._dead_letter(message, error.code, error.message)

    async def _run(
        self, handler: Handler, payload: BaseModel, context: RequestContext
    ) -> tuple[Reply, str | None]:
        """Run the handler with retries; return the reply and a dead-letter reason, if any."""
        type_label = context.message_type
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await handler(payload, context)
            except Unavailable as error:
                delay = self._retry.delay(attempt)
                remaining = context.remaining()
                if attempt < self._retry.max_attempts and (remaining is None or remaining > delay):
                    self._metrics.retries.labels(self._metrics.service, type_label).inc()
                    await asyncio.sleep(delay)
                    continue
                self._metrics.failed.labels(
                    self._metrics.service, type_label, "retries_exhausted"
                ).inc()
                # With nobody to answer, the message must not be lost: park it.
                return _error_reply(error), None if self._replies else "retries_exhausted"
            except X0Error as error:
                return _error_reply(error), None
            except Exception:
                logger.exception("handler failed", extra={"type": type_label})
                self._metrics.failed.labels(self._metrics.service, type_label, "internal").inc()
                return _error_reply(InternalError("internal error")), "handler_error"
            return Reply.of_result(result), None

    async def _reply(
        self, headers: Mapping[str, str], reply: Reply, deadline: float | None
    ) -> asyncio.Task[None] | None:
        reply_to = headers.get(Headers.REPLY_TO)
        correlation_id = headers.get(Headers.CORRELATION_ID)
        if not reply_to or not correlation_id:
            return None
        reply_headers = {
            Headers.TYPE: f"{headers.get(Headers.TYPE, '')}.reply",
            Headers.OUTCOME: reply.outcome,
            "content-type": "application/json",
        }
        body = reply.body
        if self._sealer is not None:
            # Bound to the correlation id too, which the producer sets as a header.
            bound = {**reply_headers, Headers.CORRELATION_ID: correlation_id}
            body = self._sealer.seal(body, bound)
            reply_headers[SEAL_HEADER] = bound[SEAL_HEADER]
        return await self._send(
            body,
            reply_to,
            correlation_id=correlation_id,
            headers=reply_headers,
            give_up_at=deadline,
        )

    def _open(self, body: bytes, headers: Mapping[str, str], can_reply: bool) -> bytes:
        if self._sealer is None:
            return body
        try:
            return self._sealer.open(body, headers)
        except SealError as error:
            refusal = Unauthenticated("the request is not sealed under a current key")
            raise _Poison("unsealed", str(error), refusal if can_reply else None) from None

    async def _dead_letter(
        self, message: KafkaMessage, reason: str, detail: str
    ) -> asyncio.Task[None]:
        record = message.raw_message
        assert not isinstance(record, tuple)
        if self._on_dead_letter is not None:
            try:
                await self._on_dead_letter(message, reason)
            except Exception:
                logger.exception("dead-letter hook failed", extra={"reason": reason})
        return await self.dead_letter(
            message.body,
            message.headers,
            reason=reason,
            detail=detail,
            origin=origin(record.topic, record.partition, record.offset),
            correlation_id=message.correlation_id,
        )


def _both(
    first: asyncio.Task[None] | None, second: asyncio.Task[None] | None
) -> asyncio.Task[None] | None:
    """One task that ends when both (either may be None) have ended."""
    if first is None or second is None:
        return first or second

    async def wait_both() -> None:
        await asyncio.gather(first, second)

    return asyncio.get_running_loop().create_task(wait_both())


def _error_reply(error: X0Error) -> Reply:
    return Reply.of_error(ErrorBody(code=error.code, message=error.message, details=error.details))


def _summarise(errors: list[Any]) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5]]
    return "; ".join(parts)
