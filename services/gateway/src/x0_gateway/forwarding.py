"""One way to turn an HTTP route into a Kafka request: publish, await, answer.

Routes are declared as data (path, message type, request and result models) and
built here, so every capability route validates, forwards and maps errors alike.
(No ``from __future__ import annotations`` here: FastAPI must see the real model
classes in the generated endpoints' signatures.)
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, create_model

from x0_common.kafka import Requester
from x0_gateway.deps import RequesterDep, SettingsDep
from x0_gateway.settings import GatewaySettings

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed input (bad base64url, wrong length for the algorithm)"},
    404: {"description": "Unknown key"},
    409: {"description": "Conflict with the current state"},
    413: {"description": "Body or batch too large"},
    422: {"description": "Validation failed"},
    504: {"description": "No reply before the deadline"},
}

KeyNamePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


def without_name(model: type[BaseModel]) -> type[BaseModel]:
    """The request model minus ``name``, which the path carries instead."""
    fields: dict[str, Any] = {
        field_name: (info.annotation, info)
        for field_name, info in model.model_fields.items()
        if field_name != "name"
    }
    body: type[BaseModel] = create_model(
        f"{model.__name__.removesuffix('Request')}Body",
        __config__=model.model_config,
        __doc__=model.__doc__,
        **fields,
    )
    return body


def forward(
    router: APIRouter,
    path: str,
    *,
    topic: str,
    message_type: str,
    request_model: type[BaseModel],
    result_model: type[BaseModel],
    summary: str,
    status_code: int = 200,
) -> None:
    """``POST path`` with a ``request_model`` body, answered with ``result_model``."""

    async def endpoint(
        body: request_model,  # type: ignore[valid-type]
        requester: RequesterDep,
        settings: SettingsDep,
    ) -> Any:
        return await pass_on(
            requester, settings, topic, message_type, body, status_code=status_code
        )

    _add(
        router,
        "POST",
        path,
        endpoint,
        result_model=result_model,
        summary=summary,
        status_code=status_code,
    )


def forward_named(
    router: APIRouter,
    method: str,
    path: str,
    *,
    topic: str,
    message_type: str,
    request_model: type[BaseModel],
    result_model: type[BaseModel],
    summary: str,
    status_code: int = 200,
) -> None:
    """``method path`` where ``{name}`` in the path fills the request's ``name``."""
    body_model = without_name(request_model)
    has_body = bool(body_model.model_fields) and method in {"POST", "PUT", "PATCH"}

    async def send(name: str, fields: dict[str, Any], requester: Any, settings: Any) -> Any:
        request = request_model.model_validate({"name": name, **fields})
        return await pass_on(
            requester, settings, topic, message_type, request, status_code=status_code
        )

    if has_body:

        async def endpoint(
            name: KeyNamePath,
            body: body_model,  # type: ignore[valid-type]
            requester: RequesterDep,
            settings: SettingsDep,
        ) -> Any:
            fields = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
            return await send(name, fields, requester, settings)

        _add(
            router,
            method,
            path,
            endpoint,
            result_model=result_model,
            summary=summary,
            status_code=status_code,
        )
    else:

        async def bare_endpoint(
            name: KeyNamePath, requester: RequesterDep, settings: SettingsDep
        ) -> Any:
            return await send(name, {}, requester, settings)

        _add(
            router,
            method,
            path,
            bare_endpoint,
            result_model=result_model,
            summary=summary,
            status_code=status_code,
        )


async def pass_on(
    requester: Requester,
    settings: GatewaySettings,
    topic: str,
    message_type: str,
    request: BaseModel,
    *,
    status_code: int,
) -> Response:
    """Forward ``request`` and answer with the worker's result JSON as it came.

    The worker built that JSON from the same result model the route declares, so
    decoding, validating and re-encoding it here would only cost time.
    """
    raw = await requester.request_raw(
        topic, message_type, request, timeout=settings.request_timeout_seconds
    )
    # A returned Response bypasses the route's status_code, so it is set here.
    return Response(content=raw, media_type="application/json", status_code=status_code)


def _add(
    router: APIRouter,
    method: str,
    path: str,
    endpoint: Callable[..., Awaitable[Any]],
    *,
    result_model: type[BaseModel],
    summary: str,
    status_code: int,
) -> None:
    words = path.strip("/").replace("{", "").replace("}", "").replace("/", "_")
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        response_model=result_model,
        status_code=status_code,
        summary=summary,
        responses=PROBLEM_RESPONSES,
        operation_id=f"{method.lower()}_{words}",
    )
