"""Finding a request's trace among the spans the services exported, and its chain:

gateway HTTP server span (the root) -> gateway Kafka producer span -> the worker's
processing span (another process: its parent is the producer span read from the
message headers) -> the worker's PostgreSQL/Redis client spans -> the worker's reply
producer span.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.trace import SpanKind

from x0_common.testing.otlp import OtlpReceiver, ReceivedSpan, is_descendant, render_tree

GATEWAY = "x0-gateway"
REPLY_TOPIC_PREFIX = "x0.gateway.replies."
SPAN_WAIT_SECONDS = 20.0


def db_system(span: ReceivedSpan) -> str | None:
    """``postgresql`` or ``redis`` for a database client span (old or new conventions)."""
    value = span.attributes.get("db.system") or span.attributes.get("db.system.name")
    return str(value) if span.kind is SpanKind.CLIENT and value else None


def traced_request(
    client: httpx.Client,
    otlp: OtlpReceiver,
    method: str,
    path: str,
    route: str,
    *,
    status: int | frozenset[int],
    body: Any = None,
) -> tuple[httpx.Response, ReceivedSpan]:
    """Send one request to the gateway process; return its response and its server span.

    The server span is the gateway's span for ``route`` that started while the request
    was in flight (the test is the gateway's only client).
    """
    started = time.time_ns()
    response = client.request(method, path, json=body)
    finished = time.time_ns()
    expected = status if isinstance(status, frozenset) else frozenset({status})
    assert response.status_code in expected, f"{method} {path}: {response.text}"

    def server_span(spans: tuple[ReceivedSpan, ...]) -> ReceivedSpan | None:
        return next(
            (
                span
                for span in spans
                if span.service == GATEWAY
                and span.kind is SpanKind.SERVER
                and span.attributes.get("http.route") == route
                and started <= span.start_ns <= finished
            ),
            None,
        )

    try:
        root = otlp.wait_for(server_span, timeout=SPAN_WAIT_SECONDS)
    except TimeoutError:
        servers = [s.describe() for s in otlp.spans if s.kind is SpanKind.SERVER]
        raise AssertionError(
            f"no gateway server span for {method} {route} arrived; server spans: {servers}"
        ) from None
    return response, root


@dataclass
class Chain:
    """The spans of one request's hop through a worker, found in its trace."""

    trace: tuple[ReceivedSpan, ...]
    root: ReceivedSpan
    topic: str
    worker_service: str
    producer: ReceivedSpan | None = None
    worker: ReceivedSpan | None = None
    clients: list[ReceivedSpan] = field(default_factory=list)
    reply: ReceivedSpan | None = None

    def problems(self, *, databases: frozenset[str], reply: bool, worker: bool = True) -> list[str]:
        """What the chain lacks (empty when the whole chain is there)."""
        found = []
        if not self.root.is_root:
            found.append("the gateway's server span has a parent: it is not the root")
        if self.producer is None:
            found.append(f"no gateway PRODUCER span {self.topic!r} publish under the root")
        if not worker:
            return found
        if self.worker is None:
            found.append(
                f"no {self.worker_service} CONSUMER span {self.topic!r} process whose parent "
                "is the gateway's producer span"
            )
        missing = databases - {db_system(span) for span in self.clients}
        if missing:
            found.append(f"no {sorted(missing)} client span under the worker's span")
        if reply and self.reply is None:
            found.append(f"no {self.worker_service} PRODUCER span to {REPLY_TOPIC_PREFIX}*")
        return found

    def render(self) -> str:
        """The whole trace as a tree, for a failure message."""
        return render_tree(self.trace)


def find_chain(
    spans: tuple[ReceivedSpan, ...], root: ReceivedSpan, topic: str, worker_service: str
) -> Chain:
    """The chain through ``topic`` in ``root``'s trace, as far as it arrived."""
    trace = tuple(span for span in spans if span.trace_id == root.trace_id)
    chain = Chain(trace, root, topic, worker_service)
    producers = [
        span
        for span in trace
        if span.service == GATEWAY
        and span.kind is SpanKind.PRODUCER
        and span.name == f"{topic} publish"
        and is_descendant(span, root, trace)
    ]
    for producer in producers:
        worker = next(
            (
                span
                for span in trace
                if span.service == worker_service
                and span.kind is SpanKind.CONSUMER
                and span.name == f"{topic} process"
                and span.parent_span_id == producer.span_id
            ),
            None,
        )
        if worker is not None:
            chain.producer, chain.worker = producer, worker
            break
    else:
        chain.producer = producers[0] if producers else None
    if chain.worker is not None:
        worker = chain.worker
        chain.clients = [
            span
            for span in trace
            if span.service == worker_service
            and db_system(span)
            and is_descendant(span, worker, trace)
        ]
        chain.reply = next(
            (
                span
                for span in trace
                if span.service == worker_service
                and span.kind is SpanKind.PRODUCER
                and span.name.startswith(REPLY_TOPIC_PREFIX)
                and span.name.endswith(" publish")
                and is_descendant(span, worker, trace)
            ),
            None,
        )
    return chain


def expect_chain(
    otlp: OtlpReceiver,
    root: ReceivedSpan,
    *,
    topic: str,
    worker_service: str,
    databases: frozenset[str] = frozenset(),
    reply: bool = True,
    worker: bool = True,
) -> Chain:
    """Wait for the whole chain of ``root``'s request through ``topic``; fail naming what
    is missing and printing the trace as it arrived. With ``worker=False`` only the
    gateway's side (root and producer span) is required."""

    def complete(spans: tuple[ReceivedSpan, ...]) -> Chain | None:
        chain = find_chain(spans, root, topic, worker_service)
        return None if chain.problems(databases=databases, reply=reply, worker=worker) else chain

    try:
        return otlp.wait_for(complete, timeout=SPAN_WAIT_SECONDS)
    except TimeoutError:
        chain = find_chain(otlp.spans, root, topic, worker_service)
        problems = "\n  - ".join(chain.problems(databases=databases, reply=reply, worker=worker))
        raise AssertionError(
            f"{root.name}: the trace {root.trace_id} is incomplete after "
            f"{SPAN_WAIT_SECONDS:.0f} s:\n  - {problems}\ntrace:\n{chain.render()}"
        ) from None


def expect_consumer_of(
    otlp: OtlpReceiver,
    producer: ReceivedSpan,
    *,
    worker_service: str,
    databases: frozenset[str],
) -> tuple[ReceivedSpan, tuple[ReceivedSpan, ...]]:
    """Wait for the worker span that consumed ``producer``'s message (its child, or a
    batch span linking to it) with ``databases`` client spans under it; return the
    consumer span and its trace."""

    def consumed(
        spans: tuple[ReceivedSpan, ...],
    ) -> tuple[ReceivedSpan, tuple[ReceivedSpan, ...]] | None:
        for span in spans:
            if span.service != worker_service or span.kind is not SpanKind.CONSUMER:
                continue
            if span.parent_span_id != producer.span_id and (
                (producer.trace_id, producer.span_id) not in span.links
            ):
                continue
            trace = tuple(s for s in spans if s.trace_id == span.trace_id)
            found = {db_system(s) for s in trace if db_system(s) and is_descendant(s, span, trace)}
            if databases <= found:
                return span, trace
        return None

    try:
        return otlp.wait_for(consumed, timeout=SPAN_WAIT_SECONDS)
    except TimeoutError:
        related = [
            s
            for s in otlp.spans
            if s.service == worker_service
            and (
                s.parent_span_id == producer.span_id
                or (producer.trace_id, producer.span_id) in s.links
            )
        ]
        traces = {s.trace_id for s in related} | {producer.trace_id}
        shown = render_tree(tuple(s for s in otlp.spans if s.trace_id in traces))
        recent = "\n".join(
            f"{s.describe()} links={list(s.links)}"
            for s in otlp.spans
            if s.service == worker_service and s.kind is SpanKind.CONSUMER
        )
        raise AssertionError(
            f"no {worker_service} CONSUMER span continuing or linking {producer.describe()} "
            f"with {sorted(databases)} client spans under it within {SPAN_WAIT_SECONDS:.0f} s:\n"
            f"{shown}\n{worker_service}'s CONSUMER spans:\n{recent or '(none)'}"
        ) from None
