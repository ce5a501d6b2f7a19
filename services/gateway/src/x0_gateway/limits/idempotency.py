"""``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header) on the routes that
create or mutate.

Which routes: a row whose method is POST or PATCH and whose scope grants a change
(``*:write``, ``keys:admin``, ``admin``) — key create, rotate, configure and restore,
collection create, document upsert, telemetry events. Rows that only compute or
read (stateless crypto, managed-key use, search) ignore the header: calling them
twice changes nothing. A row whose result carries secrets (``secret_key``,
``shared_secret``...) is never replayable, even if it mutates: its reply would have
to sit in Redis. None of the mutating rows has one today; :func:`supports` checks.

How, per tenant and credential (Redis key ``x0:idem:{tenant}:<credential>:<key>``,
so one caller's keys share a cluster slot):

- first use: the key is claimed as *pending* (``SET NX``), the request runs, and its
  answer (status, content type, body) is kept 24 h; a 5xx is not kept, so a retry
  runs the request again;
- same key, same request (SHA-256 of method, path, query and body): the first answer
  again, with ``Idempotent-Replayed: true``;
- same key, another request: 422; same key while the first is still running: 409
  with ``Retry-After`` (the caller retries; nothing waits here);
- Redis unreachable: 503 with ``Retry-After`` for requests that carry a key (without
  the store there is no guarantee to give), nothing changes for those without.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import redis.asyncio as aioredis
from fastapi import Header, Request, Response
from pydantic import BaseModel
from redis.exceptions import RedisError

from x0_common.contract import Operation
from x0_common.errors import Conflict, Unavailable, ValidationFailed, X0Error
from x0_gateway.limits.metrics import LimitMetrics
from x0_gateway.limits.ratelimit import caller_of
from x0_gateway.problems import problem_of

logger = logging.getLogger(__name__)

HEADER: Final = "Idempotency-Key"
MUTATING_SCOPES: Final = frozenset(
    {"keys:write", "keys:admin", "rag:write", "telemetry:write", "admin"}
)
# Result fields that hold secrets: such results are never stored, so never replayed.
SECRET_FIELDS: Final = frozenset(
    {"secret_key", "secret_keys", "shared_secret", "keys", "plaintext", "backup"}
)
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes a retry safe: the same key with the same request answers the "
        "first answer again for 24 h (`Idempotent-Replayed: true`); with another "
        "request, 422; while the first still runs, 409.",
    ),
]


def carries_secrets(model: type[BaseModel] | None) -> bool:
    """True when ``model`` or a model inside it has a secret-bearing field."""
    pending, seen = [model], set()
    while pending:
        current = pending.pop()
        if current is None or current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            if name in SECRET_FIELDS:
                return True
            for inner in _models_in(info.annotation):
                pending.append(inner)
    return False


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for arg in getattr(annotation, "__args__", ()) for found in _models_in(arg)]


def supports(operation: Operation) -> bool:
    """True for the rows whose route honours ``Idempotency-Key``."""
    http = operation.http
    return (
        http is not None
        and http.method in {"POST", "PATCH"}
        and operation.scope in MUTATING_SCOPES
        and not carries_secrets(operation.result)
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """What the store says about a key: run the request, replay, or refuse."""

    outcome: Literal["new", "replay", "mismatch", "in_progress"]
    record: dict[str, Any] | None = None


class IdempotencyStore:
    """The kept answers, in Redis."""

    def __init__(self, redis: aioredis.Redis, *, ttl_seconds: int, pending_seconds: float) -> None:
        self._redis = redis
        self._ttl_ms = ttl_seconds * 1000
        self._pending_ms = int(pending_seconds * 1000)

    @staticmethod
    def key(tenant: str, credential: str, idempotency_key: str) -> str:
        """The Redis key: tenant as hash tag, credential and caller's key hashed."""
        digest = hashlib.blake2b(f"{credential}\0{idempotency_key}".encode(), digest_size=16)
        return f"x0:idem:{{{tenant}}}:{digest.hexdigest()}"

    async def claim(self, key: str, fingerprint: str) -> Claim:
        """Claim ``key`` as pending, or say what it already holds (one round trip)."""
        pending = json.dumps({"s": "pending", "f": fingerprint})
        raw = await self._redis.set(key, pending, nx=True, get=True, px=self._pending_ms)
        if raw is None:
            return Claim("new")
        assert isinstance(raw, str | bytes)
        record: dict[str, Any] = json.loads(raw)
        if record.get("f") != fingerprint:
            return Claim("mismatch")
        if record.get("s") != "done":
            return Claim("in_progress")
        return Claim("replay", record)

    async def keep(self, key: str, fingerprint: str, response: Response) -> None:
        """Keep the answer for the key's lifetime."""
        record = {
            "s": "done",
            "f": fingerprint,
            "c": response.status_code,
            "t": response.headers.get("content-type", "application/json"),
            "b": base64.b64encode(bytes(response.body)).decode(),
        }
        await self._redis.set(key, json.dumps(record), px=self._ttl_ms)

    async def release(self, key: str) -> None:
        """Forget the key: the request failed in a way a retry may fix."""
        await self._redis.delete(key)


def fingerprint(request: Request, body: bytes) -> str:
    """SHA-256 of method, path, query string and body."""
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode()):
        digest.update(part + b"\0")
    digest.update(body)
    return digest.hexdigest()


def replayed(record: dict[str, Any]) -> Response:
    """The kept answer, marked as a replay."""
    return Response(
        content=base64.b64decode(record["b"]),
        status_code=int(record["c"]),
        headers={"content-type": record["t"], "idempotent-replayed": "true"},
    )


def idempotent(endpoint: Any) -> Any:
    """``endpoint`` behind ``Idempotency-Key``: its signature gains the header and the
    request, so FastAPI validates and documents the header."""
    # Annotations resolved where the endpoint was written, not here.
    signature = inspect.signature(endpoint, eval_str=True)
    extra = [
        inspect.Parameter("x0_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(
            "x0_idempotency_key", inspect.Parameter.KEYWORD_ONLY, annotation=KeyHeader, default=None
        ),
    ]

    async def with_idempotency(
        *, x0_request: Request, x0_idempotency_key: str | None = None, **arguments: Any
    ) -> Response:
        # No store: the lifespan has not run (an app under test that skips it; uvicorn
        # serves nothing before the lifespan has started).
        if x0_idempotency_key is None or x0_request.app.state.idempotency is None:
            response: Response = await endpoint(**arguments)
            return response
        return await _run_once(x0_request, x0_idempotency_key, endpoint, arguments)

    with_idempotency.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra]
    )
    with_idempotency.__name__ = endpoint.__name__
    with_idempotency.__doc__ = endpoint.__doc__
    return with_idempotency


async def _run_once(
    request: Request, idempotency_key: str, endpoint: Any, arguments: dict[str, Any]
) -> Response:
    store: IdempotencyStore = request.app.state.idempotency
    metrics: LimitMetrics = request.app.state.limit_metrics
    tenant, credential = caller_of(request)
    key = store.key(tenant, credential, idempotency_key)
    printed = fingerprint(request, await request.body())
    try:
        claim = await store.claim(key, printed)
    except (RedisError, OSError, TimeoutError) as error:
        metrics.idempotency.labels(metrics.service, "unavailable").inc()
        logger.warning("idempotency store unreachable: %s", type(error).__name__)
        raise Unavailable(
            "idempotency keys cannot be checked right now", details={"retry_after_seconds": 1}
        ) from None
    metrics.idempotency.labels(metrics.service, claim.outcome).inc()
    if claim.outcome == "replay":
        assert claim.record is not None
        return replayed(claim.record)
    if claim.outcome == "mismatch":
        raise ValidationFailed(
            f"this {HEADER} was used with a different request",
            details={"reason": "idempotency_key_reused"},
        )
    if claim.outcome == "in_progress":
        raise Conflict(
            f"a request with this {HEADER} is still being processed",
            details={"reason": "idempotency_key_in_progress", "retry_after_seconds": 1},
        )
    try:
        response: Response = await endpoint(**arguments)
    except X0Error as error:
        # Answered here rather than by the handler, so that the kept answer is it.
        response = problem_of(request, error)
    except BaseException:
        await _forget(store, key)
        raise
    if response.status_code >= 500:
        await _forget(store, key)
        return response
    try:
        await store.keep(key, printed, response)
    except (RedisError, OSError, TimeoutError) as error:
        # Done but not kept: the pending claim expires, then a retry runs again.
        logger.warning("idempotency answer not kept: %s", type(error).__name__)
    return response


async def _forget(store: IdempotencyStore, key: str) -> None:
    try:
        await store.release(key)
    except (RedisError, OSError, TimeoutError) as error:
        logger.warning("idempotency key not released: %s", type(error).__name__)
