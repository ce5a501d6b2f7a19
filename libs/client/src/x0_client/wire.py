"""From a contract row and a request model to an HTTP request, and back to a result.

The same rules as the gateway's routing (:mod:`x0_gateway.routing`): path parameters
come from the request fields :meth:`Http.field_of` names; the remaining fields travel
as a JSON body on POST, PUT and PATCH and as the query string otherwise. Only the
fields the caller set are sent (``exclude_unset``), so the server's defaults apply and
a PATCH changes only what it names; discriminator tags (single-value ``Literal``
fields such as an event's ``kind``) are always sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from x0_client.errors import UnexpectedResponseError, problem_from_response
from x0_client.retry import retry_after_seconds
from x0_client.routes import MUTATING_METHODS, extras_of, is_idempotent
from x0_common.contract import Operation

R = TypeVar("R", bound=BaseModel)
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class Prepared:
    """One call, ready to send as many times as the retry policy allows."""

    operation: Operation
    method: str
    path: str
    params: dict[str, str]
    body: dict[str, Any] | None
    headers: dict[str, str]
    idempotent: bool

    def build(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The httpx request (the client adds its base URL, headers and timeout)."""
        return client.build_request(
            self.method, self.path, params=self.params, json=self.body, headers=self.headers
        )


def request_of(
    operation: Operation, request: BaseModel | None, fields: Mapping[str, Any]
) -> BaseModel:
    """The row's request model: the one given, or one validated from keyword fields."""
    if request is not None:
        if fields:
            msg = f"{operation.name}() takes a request model or keyword fields, not both"
            raise TypeError(msg)
        if not isinstance(request, operation.request):
            wanted, given = operation.request.__name__, type(request).__name__
            msg = f"{operation.name}() takes {wanted}, not {given}"
            raise TypeError(msg)
        return request
    return operation.request.model_validate(dict(fields))


def sent_fields(model: BaseModel) -> dict[str, Any]:
    """``model_dump(mode="json", exclude_unset=True)``, keeping discriminator tags."""
    return model.model_dump(mode="json", include=_include(model))


def _include(value: Any) -> Any:
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {
            name: _include(getattr(value, name))
            for name, info in fields.items()
            if name in value.model_fields_set or _is_tag(info.annotation)
        }
    if isinstance(value, list | tuple) and any(isinstance(item, BaseModel) for item in value):
        return {index: _include(item) for index, item in enumerate(value)}
    return True


def _is_tag(annotation: Any) -> bool:
    return get_origin(annotation) is Literal and len(get_args(annotation)) == 1


def _path_value(operation: Operation, field: str, value: Any) -> str:
    if isinstance(value, list):
        if len(value) != 1:
            msg = f"{operation.name}(): {field} holds one item per HTTP call, not {len(value)}"
            raise ValueError(msg)
        value = value[0]
    return quote(str(value), safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def prepare(
    operation: Operation,
    request: BaseModel,
    options: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Prepared:
    """Build the call of ``operation`` for ``request``; ``options`` are the route's extras."""
    http = operation.http
    if http is None:
        msg = f"{operation.name} has no HTTP route"
        raise ValueError(msg)
    extras = extras_of(operation)
    sent_headers = dict(headers or {})
    if http.method in MUTATING_METHODS:
        key = str(uuid.uuid4())
        sent_headers[IDEMPOTENCY_HEADER] = key
        field = extras.idempotency_field
        if field and field not in request.model_fields_set:
            request = request.model_copy(update={field: key})
    everything = request.model_dump(mode="json")
    path = http.path
    for parameter in http.path_parameters:
        field = http.field_of(parameter)
        path = path.replace(f"{{{parameter}}}", _path_value(operation, field, everything[field]))
    carried = {k: v for k, v in sent_fields(request).items() if k not in http.path_fields}
    params: dict[str, str] = {}
    body: dict[str, Any] | None = None
    if http.has_body:
        # A body whenever the route reads one, even empty: FastAPI requires it then.
        if set(operation.request.model_fields) - http.path_fields:
            body = carried
    else:
        params = {
            extras.query_name(k): _query_value(v) for k, v in carried.items() if v is not None
        }
    for option in extras.options:
        value = (options or {}).get(option.name, option.default)
        if value != option.default and value is not None:
            params[option.name] = _query_value(value)
    return Prepared(
        operation, http.method, path, params, body, sent_headers, is_idempotent(operation)
    )


def read_result(response: httpx.Response, result: type[R]) -> R:
    """The result model of a 2xx answer; the typed problem of any other."""
    if not response.is_success:
        raise problem_from_response(response, retry_after=retry_after_seconds(response))
    try:
        return result.model_validate_json(response.content)
    except PydanticValidationError as invalid:
        errors = invalid.error_count()
        msg = f"the answer ({response.status_code}) is not a {result.__name__} ({errors} errors)"
        raise UnexpectedResponseError(
            msg, status=response.status_code, body=response.content
        ) from None
