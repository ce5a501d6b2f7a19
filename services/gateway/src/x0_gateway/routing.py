"""Every route, built from the contract tables in one style.

A row with an HTTP binding becomes a route: its method, path, status, summary, scope
and documented errors come from the row. Every route depends on
:func:`~x0_gateway.auth.guard.authorise` with the row's scope (401 without valid
credentials, 403 without the scope), and passes the caller's principal on with
every message it sends (the ``x0-principal`` header); then on the rate limit of the
row's class (:mod:`x0_gateway.limits.ratelimit`). Rows that create or mutate honour
``Idempotency-Key`` (:mod:`x0_gateway.limits.idempotency`); audited rows write their
audit attempt before they run (:mod:`x0_gateway.audit`). Most routes forward: path
parameters and the body (or query string) make the row's request model, published to the
row's topic, and the worker's result JSON is the answer. The few routes that do more
at the edge (an ingest that may wait, a batch of events fanned out) give their own
endpoint through ``edges``; they are added the same way.
(No ``from __future__ import annotations``: FastAPI must see real annotations.)
"""

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, create_model

from x0_common.contract import Operation
from x0_common.errors import (
    DeadlineExceeded,
    Forbidden,
    InvalidInput,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from x0_common.kafka import Requester
from x0_common.principal import Principal
from x0_gateway.audit import policy as audit_policy
from x0_gateway.audit.trail import audited_endpoint
from x0_gateway.auth.guard import PrincipalDep, authorise
from x0_gateway.deps import RequesterDep, SettingsDep
from x0_gateway.limits import idempotency
from x0_gateway.limits.ratelimit import rate_limit
from x0_gateway.settings import GatewaySettings

Endpoint = Callable[..., Awaitable[Any]]
# Builds the endpoint of a row whose route does more than forward.
Edge = Callable[[Operation], Endpoint]


def responses(operation: Operation) -> dict[int | str, dict[str, Any]]:
    """The row's documented problem responses: its own errors, then every route's."""
    assert operation.http is not None
    always: list[type[Exception]] = [
        Unauthenticated,
        Forbidden,
        ValidationFailed,
        RateLimited,
        Unavailable,
    ]
    if operation.http.has_body:
        always.append(TooLarge)
    if operation.http.has_body or carries_binary(operation.request):
        # A body that is not JSON text (FastAPI's "error parsing the body"), or a
        # binary field that is not base64url.
        always.append(InvalidInput)
    if operation.delivery == "request":
        always.append(DeadlineExceeded)
    documented: dict[int | str, dict[str, Any]] = {
        status: {"description": meaning}
        for status, meaning in operation.http.other_statuses.items()
    }
    for error in (*operation.errors, *always):
        status = getattr(error, "http_status", 500)
        summary = (error.__doc__ or error.__name__).strip().splitlines()[0]
        documented.setdefault(status, {"description": summary})
    return documented


def carries_binary(model: type[BaseModel]) -> bool:
    """True when ``model`` has a base64url field: text that does not decode is a 400."""
    return '"contentEncoding": "base64url"' in json.dumps(model.model_json_schema())


def add_route(router: APIRouter, operation: Operation, endpoint: Endpoint) -> None:
    """Add ``endpoint`` as the row's route, documented from the row, behind its scope."""
    http = operation.http
    assert http is not None
    if idempotency.supports(operation):
        endpoint = idempotency.idempotent(endpoint)
    router.add_api_route(
        http.path,
        endpoint,
        methods=[http.method],
        response_model=operation.result,
        status_code=http.status,
        summary=operation.summary,
        responses=responses(operation),
        operation_id=operation.name,
        tags=[operation.topic.split(".")[1]],
        # Rate limits after authentication: they count per credential and tenant.
        dependencies=[Depends(authorise(operation.scope)), Depends(rate_limit(operation))],
        openapi_extra={"x-x0-scope": operation.scope, "x-x0-type": operation.message_type},
    )


def build_router(operations: Iterable[Operation], edges: Mapping[Operation, Edge]) -> APIRouter:
    """One route per row with an HTTP binding; an audited row's endpoint writes its
    attempt record first (:mod:`x0_gateway.audit.trail`: no record, no operation)."""
    router = APIRouter()
    for operation in operations:
        if operation.http is None:
            continue
        endpoint = edges.get(operation, forwarding_endpoint)(operation)
        if audit_policy.audited(operation):
            endpoint = audited_endpoint(operation, endpoint)
        add_route(router, operation, endpoint)
    return router


def path_parameter(operation: Operation, parameter: str) -> Any:
    """The annotation of a path parameter: the constraints of the field it fills."""
    assert operation.http is not None
    info = operation.request.model_fields[operation.http.field_of(parameter)]
    examples = info.examples
    return Annotated[info.annotation, *info.metadata, Path(examples=examples)]


def carried_fields(operation: Operation) -> type[BaseModel] | None:
    """The model of what the body (or query string) carries: the request minus the
    fields the path fills; None when nothing is left."""
    assert operation.http is not None
    taken = operation.http.path_fields
    if not taken:
        return operation.request if operation.request.model_fields else None
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in operation.request.model_fields.items()
        if name not in taken
    }
    if not fields:
        return None
    suffix = "Body" if operation.http.has_body else "Query"
    model: type[BaseModel] = create_model(
        f"{operation.request.__name__.removesuffix('Request')}{suffix}",
        __config__=operation.request.model_config,
        __doc__=operation.request.__doc__,
        **fields,
    )
    return model


def request_of(operation: Operation, carried: BaseModel | None, path: dict[str, Any]) -> BaseModel:
    """The row's request from what the body or query carried and the path's values."""
    assert operation.http is not None
    if not path and carried is not None and type(carried) is operation.request:
        return carried  # validated once, as the worker will read it
    fields = carried.model_dump(exclude_unset=True) if carried is not None else {}
    fields |= {operation.http.field_of(name): value for name, value in path.items()}
    try:
        return operation.request.model_validate(fields)
    except ValidationError as invalid:
        raise RequestValidationError(invalid.errors(include_url=False)) from None


def forwarding_endpoint(operation: Operation) -> Endpoint:
    """Forward the row's request and answer with the worker's result."""
    http = operation.http
    assert http is not None
    parameters = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=path_parameter(operation, name)
        )
        for name in http.path_parameters
    ]
    carried = carried_fields(operation)
    if carried is not None:
        annotation = carried if http.has_body else Annotated[carried, Query()]
        parameters.append(
            inspect.Parameter("carried", inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
        )
    parameters += [
        inspect.Parameter("requester", inspect.Parameter.KEYWORD_ONLY, annotation=RequesterDep),
        inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY, annotation=SettingsDep),
        inspect.Parameter("principal", inspect.Parameter.KEYWORD_ONLY, annotation=PrincipalDep),
    ]

    async def endpoint(
        *,
        requester: Requester,
        settings: GatewaySettings,
        principal: Principal,
        carried: Any = None,
        **path: Any,
    ) -> Response:
        request = request_of(operation, carried, path)
        return await pass_on(requester, settings, operation, request, principal)

    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = operation.name
    return endpoint


async def pass_on(
    requester: Requester,
    settings: GatewaySettings,
    operation: Operation,
    request: BaseModel,
    principal: Principal,
) -> Response:
    """Forward ``request`` on behalf of ``principal`` and answer with the worker's
    result JSON as it came.

    The worker built that JSON from the same result model the route declares, so
    decoding, validating and re-encoding it here would only cost time.
    """
    assert operation.http is not None
    raw = await requester.request_raw(
        operation.topic,
        operation.message_type,
        request,
        timeout=settings.request_timeout_seconds,
        principal=principal.header(),
    )
    # A returned Response bypasses the route's status_code, so it is set here.
    return Response(content=raw, media_type="application/json", status_code=operation.http.status)
