"""The telemetry routes' HTTP contract: validation, problem+json, clock skew, the 503 path.

Kafka is not the subject here: the app's requester is replaced by one that records what
the routes ask of it (the real publish path is in ``test_telemetry_publish.py``, the
real worker in ``tests/e2e/test_telemetry_gateway.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from x0_common.contract import Telemetry
from x0_common.errors import NotFound, Unavailable
from x0_common.events import telemetry as t
from x0_gateway.app import create_app
from x0_gateway.problems import PROBLEM_JSON
from x0_gateway.routes.telemetry import history_request
from x0_gateway.testing import ADMIN, authenticate_as

from .http_support import in_process_client, unit_settings

pytestmark = pytest.mark.unit


class RecordingRequester:
    """Stands in for the requester: records requests and publishes, answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, BaseModel]] = []
        self.timeouts: list[float] = []
        self.published: list[tuple[str, str, BaseModel, str | None]] = []
        self.principals: list[str | None] = []
        self.reply: bytes = b'{"nodes": []}'
        self.request_error: Exception | None = None
        self.fail_node: str | None = None
        self.stall = False

    async def request_raw(
        self,
        topic: str,
        message_type: str,
        payload: BaseModel,
        *,
        timeout: float,
        principal: str | None = None,
    ) -> bytes:
        self.requests.append((topic, message_type, payload))
        self.principals.append(principal)
        self.timeouts.append(timeout)
        if self.request_error is not None:
            raise self.request_error
        return self.reply

    async def publish(
        self,
        topic: str,
        message_type: str,
        payload: BaseModel,
        *,
        key: str | None = None,
        principal: str | None = None,
    ) -> str:
        self.principals.append(principal)
        if key is not None and key == self.fail_node:
            # Fails at once, while the other sends still wait for their acks.
            raise Unavailable(
                "the message could not be published",
                details={"kafka_error": "KafkaTimeoutError"},
            )
        await asyncio.sleep(3600 if self.stall else 0.01)
        self.published.append((topic, message_type, payload, key))
        return f"0:{len(self.published)}"


def make_app(**overrides: Any) -> FastAPI:
    """A gateway whose lifespan never runs; nothing here may reach Kafka. Every request
    comes from an admin of the default tenant (who calls is not the subject here)."""
    settings = unit_settings(
        **overrides,
    )
    app = create_app(settings)
    authenticate_as(app)
    return app


@pytest.fixture
def requester() -> RecordingRequester:
    return RecordingRequester()


@pytest.fixture
async def client(requester: RecordingRequester) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(request_timeout_seconds=0.5, telemetry_max_clock_skew_seconds=60)
    app.state.requester = requester
    async with in_process_client(app) as http:
        yield http


def stamp(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat()


def event(kind: str, node: str, *parts: dict[str, Any]) -> dict[str, Any]:
    """An event of ``kind`` from ``node`` in mesh m1, stamped now; ``parts`` add or
    replace fields, later ones winning."""
    merged: dict[str, Any] = {"kind": kind, "node_id": node, "mesh_id": "m1", "timestamp": stamp()}
    for part in parts:
        merged.update(part)
    return merged


def heartbeat(node: str = "n1", **fields: Any) -> dict[str, Any]:
    return event("heartbeat", node, {"software_version": "1.2.3"}, fields)


METRICS = {
    "cpu": 0.5,
    "memory": 0.25,
    "rtt_ms": 12.5,
    "packet_loss": 0.01,
    "throughput_bps": 1e6,
    "neighbours": [{"node_id": "n2", "link_quality": 0.9}],
}


def metrics(node: str = "n1", **fields: Any) -> dict[str, Any]:
    return event("metrics", node, METRICS, fields)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["type"] == f"urn:x0:problem:{code}"
    assert body["instance"] == response.request.url.path
    return body


# -- POST /v1/telemetry/events --


async def test_events_are_published_keyed_by_node_with_their_type(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    events = [heartbeat("n1"), metrics("n1"), heartbeat("n2", status="draining")]
    response = await client.post("/v1/telemetry/events", json={"events": events})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3}
    sent = sorted(
        (topic, message_type, key, payload.kind)  # type: ignore[attr-defined]
        for topic, message_type, payload, key in requester.published
    )
    assert sent == [
        (t.EVENTS_TOPIC, Telemetry.HEARTBEAT.message_type, "n1", "heartbeat"),
        (t.EVENTS_TOPIC, Telemetry.HEARTBEAT.message_type, "n2", "heartbeat"),
        (t.EVENTS_TOPIC, Telemetry.METRICS.message_type, "n1", "metrics"),
    ]
    # Each on behalf of the caller (the x0-principal header).
    assert requester.principals == [ADMIN.header()] * 3


@pytest.mark.parametrize(
    ("events", "where"),
    [
        ([], ["body", "events"]),
        ([{**heartbeat(), "kind": "reboot"}], ["body", "events", 0]),
        ([{k: v for k, v in heartbeat().items() if k != "kind"}], ["body", "events", 0]),
        ([heartbeat(timestamp="2026-11-27T12:00:00")], ["body", "events", 0, "heartbeat"]),
        ([metrics(), metrics(cpu=1.5)], ["body", "events", 1, "metrics", "cpu"]),
        ([heartbeat(node="-starts-with-a-dash")], ["body", "events", 0, "heartbeat"]),
        ([heartbeat(status="down")], ["body", "events", 0, "heartbeat", "status"]),
        ([heartbeat(colour="blue")], ["body", "events", 0, "heartbeat", "colour"]),
    ],
    ids=[
        "empty",
        "unknown-kind",
        "no-kind",
        "naive-timestamp",
        "cpu-above-1",
        "bad-node-id",
        "down-is-never-reported",
        "unknown-field",
    ],
)
async def test_malformed_events_are_422_and_nothing_is_published(
    client: httpx.AsyncClient,
    requester: RecordingRequester,
    events: list[dict[str, Any]],
    where: list[Any],
) -> None:
    response = await client.post("/v1/telemetry/events", json={"events": events})
    body = assert_problem(response, 422, "validation")
    locations = [error["loc"] for error in body["details"]["errors"]]
    assert any(loc[: len(where)] == where for loc in locations), locations
    assert requester.published == []


async def test_rejected_input_is_never_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/telemetry/events", json={"events": [heartbeat(software_version="s3cr3t" * 20)]}
    )
    assert_problem(response, 422, "validation")
    assert "s3cr3t" not in response.text


async def test_more_than_500_events_is_413(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    events = [heartbeat(f"n{i}") for i in range(t.MAX_EVENTS_PER_POST + 1)]
    response = await client.post("/v1/telemetry/events", json={"events": events})
    assert_problem(response, 413, "too_large")
    assert requester.published == []


async def test_a_body_over_the_gateway_limit_is_a_413_problem() -> None:
    app = make_app(max_body_bytes=10_000)
    async with in_process_client(app) as http:
        events = [heartbeat(f"n{i}") for i in range(100)]
        response = await http.post("/v1/telemetry/events", json={"events": events})
    assert_problem(response, 413, "too_large")


async def timestamp_refused(
    client: httpx.AsyncClient,
    requester: RecordingRequester,
    events: list[dict[str, Any]],
    *,
    index: int,
) -> str:
    """Posts ``events``: the one at ``index`` is refused for its timestamp (400) and none
    is published. The problem's title."""
    response = await client.post("/v1/telemetry/events", json={"events": events})
    body = assert_problem(response, 400, "invalid_input")
    assert body["details"] == {"index": index, "field": "timestamp"}
    assert requester.published == []
    return str(body["title"])


async def test_an_event_beyond_the_clock_skew_is_refused_by_index_and_none_is_published(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    events = [
        heartbeat("n1"),
        # Within the 60 s this app allows: a slightly fast clock is fine.
        metrics("n1", timestamp=stamp(timedelta(seconds=30))),
        heartbeat("n2", timestamp=stamp(timedelta(minutes=5))),
        heartbeat("n3", timestamp=stamp(timedelta(days=1))),
    ]
    assert "event 2" in await timestamp_refused(client, requester, events, index=2)


async def test_a_late_event_within_retention_is_accepted(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    # Late or replayed events are the worker's business (stored, never regressing state).
    old = heartbeat("n1", timestamp=stamp(-timedelta(days=3)))
    response = await client.post("/v1/telemetry/events", json={"events": [old]})
    assert response.status_code == 202, response.text
    assert len(requester.published) == 1


async def test_an_event_older_than_retention_is_refused_by_index_and_none_is_published(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    # The worker would dead-letter it: a 202 would promise history that is never kept.
    events = [heartbeat("n1"), heartbeat("n2", timestamp=stamp(-timedelta(days=8)))]
    assert "retention" in await timestamp_refused(client, requester, events, index=1)


async def test_a_kafka_failure_is_503_after_every_send_ended(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    requester.fail_node = "n2"
    events = [heartbeat("n1"), heartbeat("n2"), metrics("n3"), metrics("n2")]
    response = await client.post("/v1/telemetry/events", json={"events": events})
    body = assert_problem(response, 503, "unavailable")
    assert body["details"] == {"kafka_error": "KafkaTimeoutError", "failed": 2, "published": 2}
    # The answer came after the other sends ended, not while they still ran.
    assert sorted(key for *_, key in requester.published) == ["n1", "n3"]


async def test_a_stalled_broker_is_503_within_the_request_timeout(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    requester.stall = True
    async with asyncio.timeout(5):
        response = await client.post("/v1/telemetry/events", json={"events": [heartbeat()]})
    body = assert_problem(response, 503, "unavailable")
    assert body["details"] == {"timeout_seconds": 0.5}


# -- the queries --


async def test_list_passes_its_filters_and_the_worker_reply_through(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    requester.reply = b'{"nodes":[]}'
    response = await client.get(
        "/v1/telemetry/nodes", params={"mesh_id": "m1", "status": "down", "limit": 7}
    )
    assert response.status_code == 200
    assert response.content == b'{"nodes":[]}'
    assert requester.requests == [
        (
            t.REQUESTS_TOPIC,
            Telemetry.NODES_LIST.message_type,
            t.ListNodesRequest(mesh_id="m1", status="down", limit=7),
        )
    ]
    # The gateway's one request budget.
    assert requester.timeouts == [0.5]
    assert requester.principals == [ADMIN.header()]


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/v1/telemetry/nodes", {"status": "sleeping"}, ["query", "status"]),
        ("/v1/telemetry/nodes", {"limit": 0}, ["query", "limit"]),
        ("/v1/telemetry/nodes", {"limit": t.MAX_NODES_PER_LIST + 1}, ["query", "limit"]),
        ("/v1/telemetry/nodes", {"mesh": "m1"}, ["query", "mesh"]),
        ("/v1/telemetry/nodes/-bad", {}, ["path", "node_id"]),
        ("/v1/telemetry/topology", {}, ["query", "mesh_id"]),
        ("/v1/telemetry/topology", {"mesh_id": "a b"}, ["query", "mesh_id"]),
        ("/v1/telemetry/nodes/n1/history", {"from": "2026-11-27T12:00:00"}, ["query", "from"]),
        ("/v1/telemetry/nodes/n1/history", {"to": "yesterday"}, ["query", "to"]),
        ("/v1/telemetry/nodes/n1/history", {"step": t.MIN_STEP_SECONDS - 1}, ["query", "step"]),
        (
            "/v1/telemetry/nodes/n1/history",
            {"from": "2026-11-27T12:00:00Z", "to": "2026-11-27T12:00:00+00:00"},
            ["query", "to"],
        ),
        (
            "/v1/telemetry/nodes/n1/history",
            {"from": "2026-11-27T12:00:00Z", "to": "2026-11-27T11:00:00Z"},
            ["query", "to"],
        ),
        (
            "/v1/telemetry/nodes/n1/history",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-27T00:00:00Z", "step": 60},
            ["query", "step"],
        ),
    ],
    ids=[
        "unknown-status",
        "limit-0",
        "limit-too-big",
        "unknown-parameter",
        "bad-node-id",
        "topology-without-mesh",
        "bad-mesh-id",
        "naive-from",
        "unparsable-to",
        "step-too-small",
        "empty-window",
        "to-before-from",
        "too-many-points",
    ],
)
async def test_bad_queries_are_422_before_anything_is_asked(
    client: httpx.AsyncClient,
    requester: RecordingRequester,
    path: str,
    params: dict[str, Any],
    where: list[str],
) -> None:
    body = assert_problem(await client.get(path, params=params), 422, "validation")
    assert where in [error["loc"] for error in body["details"]["errors"]]
    assert requester.requests == []


async def test_history_sends_the_window_and_step_it_was_given(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    response = await client.get(
        "/v1/telemetry/nodes/n1/history",
        params={"from": "2026-11-27T12:00:00+02:00", "to": "2026-11-27T11:00:00Z", "step": 10},
    )
    assert response.status_code == 200, response.text
    [(topic, message_type, request)] = requester.requests
    assert (topic, message_type) == (t.REQUESTS_TOPIC, Telemetry.NODE_HISTORY.message_type)
    assert request == t.HistoryRequest(
        node_id="n1",
        start=datetime(2026, 11, 27, 10, tzinfo=UTC),
        end=datetime(2026, 11, 27, 11, tzinfo=UTC),
        step_seconds=10,
    )


def test_the_history_window_defaults_to_the_last_hour_by_the_minute() -> None:
    now = datetime(2026, 11, 27, 20, 30, tzinfo=UTC)
    request = history_request("n1", None, None, 60, now=now)
    assert (request.start, request.end, request.step_seconds) == (now - timedelta(hours=1), now, 60)
    # Only `to` given: the hour before it.
    end = now - timedelta(days=1)
    assert history_request("n1", None, end, 60, now=now).start == end - timedelta(hours=1)


def test_a_week_by_the_minute_fits_in_one_reply_even_off_the_minute() -> None:
    now = datetime(2026, 11, 27, 20, 30, 10, tzinfo=UTC)
    week = history_request("n1", now - timedelta(days=7), now, 60, now=now)
    assert week.step_seconds == 60


def test_points_are_counted_as_the_worker_counts_epoch_aligned_steps() -> None:
    start = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
    exact = start + timedelta(seconds=10 * t.MAX_HISTORY_POINTS)
    # Off the 10 s grid: the window touches one step more than its length holds.
    with pytest.raises(RequestValidationError):
        history_request("n1", start, exact, 10, now=exact)
    aligned = start - timedelta(seconds=5)
    request = history_request(
        "n1", aligned, aligned + timedelta(seconds=10 * t.MAX_HISTORY_POINTS), 10, now=exact
    )
    assert request.start == aligned


async def test_an_unknown_node_is_a_404_problem(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    requester.request_error = NotFound("no such node", details={"node_id": "n9"})
    body = assert_problem(await client.get("/v1/telemetry/nodes/n9"), 404, "not_found")
    assert body["details"] == {"node_id": "n9"}
    assert requester.requests == [
        (t.REQUESTS_TOPIC, Telemetry.NODE_GET.message_type, t.NodeRequest(node_id="n9"))
    ]


async def test_topology_asks_for_the_mesh(
    client: httpx.AsyncClient, requester: RecordingRequester
) -> None:
    requester.reply = b'{"mesh_id":"m1","nodes":[],"links":[]}'
    response = await client.get("/v1/telemetry/topology", params={"mesh_id": "m1"})
    assert response.json() == {"mesh_id": "m1", "nodes": [], "links": []}
    assert requester.requests == [
        (t.REQUESTS_TOPIC, Telemetry.TOPOLOGY_GET.message_type, t.TopologyRequest(mesh_id="m1"))
    ]


async def test_the_openapi_document_says_a_retry_is_safe(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    post = paths["/v1/telemetry/events"]["post"]
    assert "202" in post["responses"]
    assert "503" in post["responses"]
    assert "(node_id, timestamp, type)" in post["description"]
    history = paths["/v1/telemetry/nodes/{node_id}/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"node_id", "from", "to", "step"}
    assert {p["name"] for p in paths["/v1/telemetry/nodes"]["get"]["parameters"]} == {
        "mesh_id",
        "status",
        "limit",
    }
