"""The telemetry routes that do more than forward: a node's history window (defaults
and bounds at the edge) and events for producers that cannot speak Kafka."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from x0_common.contract import OPERATION_OF_KIND, Operation, Telemetry
from x0_common.errors import Unavailable, X0Error
from x0_common.events import telemetry as t
from x0_common.kafka import Requester
from x0_common.principal import Principal
from x0_gateway.auth.guard import PrincipalDep
from x0_gateway.deps import RequesterDep, SettingsDep
from x0_gateway.routing import Edge, Endpoint, pass_on, path_parameter

DEFAULT_HISTORY = timedelta(hours=1)

FromQuery = Annotated[
    AwareDatetime | None,
    Query(
        alias="from",
        description="RFC 3339 instant with its offset; default `to` minus one hour",
        examples=["2026-11-27T19:00:00Z"],
    ),
]
ToQuery = Annotated[
    AwareDatetime | None,
    Query(alias="to", description="RFC 3339 instant with its offset; default now"),
]
StepQuery = Annotated[
    int,
    Query(
        ge=t.MIN_STEP_SECONDS,
        le=86_400,
        description="seconds per point; whole minutes are answered from the per-minute rollups",
    ),
]


def history_endpoint(operation: Operation) -> Endpoint:
    """``GET /nodes/{node_id}/history?from&to&step``."""
    node_path = path_parameter(operation, "node_id")

    async def node_history(
        node_id: node_path,  # type: ignore[valid-type]
        requester: RequesterDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        *,
        start: FromQuery = None,
        end: ToQuery = None,
        step: StepQuery = t.ROLLUP_STEP_SECONDS,
    ) -> Response:
        """Served from the per-minute rollups when the step is a whole number of minutes,
        from the raw events otherwise. At most 11,000 points (a week at one minute)."""
        request = history_request(node_id, start, end, step, now=datetime.now(UTC))
        return await pass_on(requester, settings, operation, request, principal)

    return node_history


def history_request(
    node_id: str, start: datetime | None, end: datetime | None, step: int, *, now: datetime
) -> t.HistoryRequest:
    """The request for a history window, refused as a validation error (422) when the
    window is empty or holds more points than a reply may carry."""
    end = end or now
    start = start or end - DEFAULT_HISTORY
    if end <= start:
        raise _query_error("to", "must be later than `from`", "time_order")
    # Counted as the worker counts them: every epoch-aligned step the window touches.
    steps = t.history_steps(start, end, step)
    if steps > t.MAX_HISTORY_POINTS:
        msg = f"the window spans {steps} steps, more than {t.MAX_HISTORY_POINTS}"
        raise _query_error("step", msg, "too_many_points")
    return t.HistoryRequest(node_id=node_id, start=start, end=end, step_seconds=step)


def _query_error(parameter: str, message: str, error_type: str) -> RequestValidationError:
    # The same shape as FastAPI's own validation errors, so one handler answers both.
    return RequestValidationError(
        [{"loc": ("query", parameter), "msg": message, "type": error_type}]
    )


def events_endpoint(_: Operation) -> Endpoint:
    """``POST /events``: each event to Kafka as its own message, 202 once all are held."""

    async def publish_events(
        body: t.PublishEvents,
        requester: RequesterDep,
        settings: SettingsDep,
        principal: PrincipalDep,
    ) -> Response:
        """For producers that cannot speak Kafka. Each event goes to `x0.telemetry.events`,
        keyed by its `node_id`, with the `x0-type` of its `kind`, and the answer is 202 only
        once Kafka holds every one of them (acks=all). Nothing is published when an event is
        invalid or stamped further ahead than the gateway's clock skew allows.

        A 503 means some events may be in Kafka and others not. Re-sending the whole batch is
        safe: the telemetry worker stores an event once per (node_id, timestamp, type), and
        out-of-order events never move a node's latest state backwards."""
        refuse_mistimed_events(
            body.events,
            max_skew=timedelta(seconds=settings.telemetry_max_clock_skew_seconds),
            retention=timedelta(days=settings.telemetry_retention_days),
        )
        await publish_all(
            requester, body.events, timeout=settings.request_timeout_seconds, principal=principal
        )
        accepted = t.EventsAccepted(accepted=len(body.events))
        return Response(accepted.model_dump_json(), status_code=202, media_type="application/json")

    return publish_events


def refuse_mistimed_events(
    events: Sequence[t.NodeHeartbeat | t.NodeMetrics], *, max_skew: timedelta, retention: timedelta
) -> None:
    """Raise 400 ``invalid_input`` naming the first event stamped more than ``max_skew``
    ahead of now or older than ``retention`` (the worker would dead-letter it)."""
    now = datetime.now(UTC)
    for index, event in enumerate(events):
        try:
            t.check_timestamp(event, max_skew=max_skew, retention=retention, now=now)
        except (t.FutureTimestamp, t.BeyondRetention) as error:
            raise type(error)(
                f"event {index}: {error.message}", details={**error.details, "index": index}
            ) from None


async def publish_all(
    requester: Requester,
    events: Sequence[t.NodeHeartbeat | t.NodeMetrics],
    *,
    timeout: float,
    principal: Principal,
) -> None:
    """Publish every event on behalf of ``principal`` at once and return when Kafka has
    confirmed them all.

    Every send runs to its end before the answer, so a 503 never leaves sends running
    behind it; ``timeout`` bounds the whole batch (a stalled broker is a 503 too).
    """
    on_behalf = principal.header()
    sends = [
        requester.publish(
            t.EVENTS_TOPIC,
            OPERATION_OF_KIND[event.kind].message_type,
            event,
            key=event.node_id,
            principal=on_behalf,
        )
        for event in events
    ]
    try:
        async with asyncio.timeout(timeout):
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
    except TimeoutError:
        msg = "Kafka did not confirm every event in time; re-sending the batch is safe"
        raise Unavailable(msg, details={"timeout_seconds": timeout}) from None
    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, X0Error)
    ]
    if unexpected:
        raise unexpected[0]  # a bug, not Kafka: the 500 handler logs it
    failures = [o for o in outcomes if isinstance(o, X0Error)]
    if failures:
        msg = f"{len(failures)} of {len(events)} events were not published; re-sending is safe"
        details = {"failed": len(failures), "published": len(events) - len(failures)}
        raise Unavailable(msg, details={**failures[0].details, **details})


EDGES: dict[Operation, Edge] = {
    Telemetry.NODE_HISTORY: history_endpoint,
    Telemetry.PUBLISH_EVENTS: events_endpoint,
}
