"""A stand-in gateway for tests of code that uses the client (like ``httpx.MockTransport``).

::

    gateway = MockGateway()

    @gateway.on("read_key")
    def read_key(request: KeyNameRequest) -> KeyInfo:
        raise Problem(404, "not_found", f"no key {request.name}")

    with Client(transport=gateway) as x0:
        with pytest.raises(NotFoundError):
            x0.read_key(name="missing")
    assert gateway.calls[0].request == KeyNameRequest(name="missing")

The gateway routes each HTTP request to an operation of the contract by method and
path, rebuilds the operation's request model from the path, body or query string (so
a handler sees what the real gateway would forward), and answers the handler's result
with the row's status. A handler that raises :class:`Problem` or an
:class:`x0_common.errors.X0Error` is answered ``application/problem+json``; one that
returns an ``httpx.Response`` is answered with it as it is. It serves both
:class:`~x0_client.Client` (``transport=``) and :class:`~x0_client.AsyncClient`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_origin
from urllib.parse import unquote

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from x0_client.errors import PROBLEM_JSON
from x0_client.routes import ROUTED, extras_of
from x0_common.contract import Operation
from x0_common.errors import X0Error

Handler = Callable[[Any], Any]


class Problem(Exception):
    """Raise in a handler to answer ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str = "",
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {title}")
        self.status = status
        self.code = code
        self.title = title or code
        self.details = dict(details or {})
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Call:
    """One request the gateway received: its operation, request model, options, raw request."""

    operation: Operation
    request: BaseModel
    options: dict[str, str]
    http: httpx.Request


def problem_response(
    status: int, code: str, title: str, details: Mapping[str, Any] | None = None, **headers: str
) -> httpx.Response:
    """An ``application/problem+json`` answer shaped as the gateway's."""
    body: dict[str, Any] = {
        "type": f"urn:x0:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={
            "content-type": PROBLEM_JSON,
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
    )


@dataclass
class _Route:
    operation: Operation
    pattern: re.Pattern[str]


def _route(operation: Operation) -> _Route:
    assert operation.http is not None
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(operation.http.path))
    return _Route(operation, re.compile(f"^{regex}$"))


@dataclass
class MockGateway(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Routes requests by operation name to ``handlers`` and records every call."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _routes: list[_Route] = field(default_factory=lambda: [_route(o) for o in ROUTED], repr=False)

    def on(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: ``handler(request_model)`` answers the operation ``name``."""
        if not any(r.operation.name == name for r in self._routes):
            msg = f"no routed operation is named {name!r}"
            raise KeyError(msg)

        def register(handler: Handler) -> Handler:
            self.handlers[name] = handler
            return handler

        return register

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the sync transport)."""
        request.read()
        handled = self._handled(request)
        if isinstance(handled, httpx.Response):
            return handled
        operation, outcome = handled
        if inspect.isawaitable(outcome):
            msg = f"the handler of {operation.name} is a coroutine: use an AsyncClient"
            raise TypeError(msg)
        return _answer(operation, outcome)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the async transport); handlers may be coroutines."""
        await request.aread()
        handled = self._handled(request)
        if isinstance(handled, httpx.Response):
            return handled
        operation, outcome = handled
        if inspect.isawaitable(outcome):
            try:
                outcome = await outcome
            except (Problem, X0Error) as error:
                return _error_response(error)
        return _answer(operation, outcome)

    def _handled(self, request: httpx.Request) -> httpx.Response | tuple[Operation, Any]:
        """The answer when no handler runs or it raises a problem; else the operation
        and what its handler returned (an awaitable, for a coroutine handler)."""
        routed = self._dispatch(request)
        if isinstance(routed, httpx.Response):
            return routed
        operation, handler, model = routed
        try:
            return operation, handler(model)
        except (Problem, X0Error) as error:
            return _error_response(error)

    def _dispatch(
        self, request: httpx.Request
    ) -> httpx.Response | tuple[Operation, Handler, BaseModel]:
        """The operation, its handler and request model; or the answer when there is none."""
        for route in self._routes:
            http = route.operation.http
            assert http is not None
            match = route.pattern.match(request.url.path)
            if match is None or http.method != request.method:
                continue
            operation = route.operation
            try:
                model, options = _request_model(operation, request, match.groupdict())
            except PydanticValidationError as invalid:
                errors = [
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in invalid.errors()
                ]
                return problem_response(
                    422, "validation", "the request is not valid", {"errors": errors}
                )
            self.calls.append(Call(operation, model, options, request))
            handler = self.handlers.get(operation.name)
            if handler is None:
                title = f"MockGateway has no handler for {operation.name}"
                return problem_response(501, "not_implemented", title)
            return operation, handler, model
        return problem_response(
            404, "not_found", f"no route for {request.method} {request.url.path}"
        )


def _answer(operation: Operation, outcome: Any) -> httpx.Response:
    if isinstance(outcome, httpx.Response):
        return outcome
    assert operation.http is not None
    payload = outcome.model_dump(mode="json") if isinstance(outcome, BaseModel) else outcome
    return httpx.Response(operation.http.status, json=payload)


def _error_response(error: Problem | X0Error) -> httpx.Response:
    if isinstance(error, Problem):
        return problem_response(
            error.status, error.code, error.title, error.details, **error.headers
        )
    return problem_response(error.http_status, error.code, error.message, error.details)


def _request_model(
    operation: Operation, request: httpx.Request, path: Mapping[str, str]
) -> tuple[BaseModel, dict[str, str]]:
    """Rebuild the row's request model as the gateway does; return it and the options."""
    http = operation.http
    assert http is not None
    extras = extras_of(operation)
    option_names = {o.name for o in extras.options}
    fields: dict[str, Any] = {}
    if http.has_body and request.content:
        fields.update(json.loads(request.content))
    by_query_name = {extras.query_name(f): f for f in operation.request.model_fields}
    options: dict[str, str] = {}
    for name, value in request.url.params.multi_items():
        if name in option_names:
            options[name] = value
        else:
            fields[by_query_name.get(name, name)] = value
    for parameter, value in path.items():
        name = http.field_of(parameter)
        annotation = operation.request.model_fields[name].annotation
        fields[name] = [unquote(value)] if get_origin(annotation) is list else unquote(value)
    return operation.request.model_validate(fields), options
