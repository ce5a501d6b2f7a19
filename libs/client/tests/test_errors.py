"""problem+json answers become the client's typed errors, by code and by status."""

from __future__ import annotations

import httpx
import pytest

from x0_client import (
    NO_RETRY,
    AsyncClient,
    Client,
    ConflictError,
    DeadlineExceededError,
    ForbiddenError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    ProblemError,
    RateLimitedError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
    UnexpectedResponseError,
    ValidationError,
    X0ClientError,
)
from x0_client.errors import problem_from_response
from x0_client.testing import MockGateway, Problem, problem_response
from x0_common.errors import Conflict, NotFound, Overloaded, TooLarge

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "invalid_input", InvalidInputError),
        (400, "unknown_type", InvalidInputError),
        (401, "unauthorized", UnauthorizedError),
        (403, "forbidden", ForbiddenError),
        (404, "not_found", NotFoundError),
        (409, "conflict", ConflictError),
        (413, "too_large", TooLargeError),
        (422, "validation", ValidationError),
        (429, "rate_limited", RateLimitedError),
        (500, "internal", InternalServerError),
        (503, "unavailable", UnavailableError),
        (503, "overloaded", UnavailableError),
        (504, "deadline_exceeded", DeadlineExceededError),
        # An unknown code falls back to its status; an unknown status to the base class.
        (404, "gone_fishing", NotFoundError),
        (418, "teapot", ProblemError),
    ],
)
def test_each_problem_maps_to_its_class(
    status: int, code: str, expected: type[ProblemError]
) -> None:
    def refuse(_: object) -> None:
        raise Problem(status, code, "t")

    gateway = MockGateway(handlers={"read_key": refuse})
    with Client(transport=gateway, retry=NO_RETRY) as x0, pytest.raises(expected) as raised:
        x0.read_key(name="k")
    assert type(raised.value) is expected
    assert (raised.value.status, raised.value.code, raised.value.title) == (status, code, "t")
    assert isinstance(raised.value, X0ClientError)


def test_a_problem_keeps_its_details_trace_and_instance() -> None:
    response = httpx.Response(
        409,
        json={
            "type": "urn:x0:problem:conflict",
            "title": "key exists",
            "status": 409,
            "code": "conflict",
            "instance": "/v1/crypto/keys",
            "details": {"name": "k"},
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        },
        headers={"content-type": "application/problem+json"},
    )
    error = problem_from_response(response)
    assert isinstance(error, ConflictError)
    assert error.details == {"name": "k"}
    assert error.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert error.instance == "/v1/crypto/keys"
    assert str(error) == "409 conflict: key exists"


def test_an_answer_that_is_not_a_problem_still_maps_by_status() -> None:
    error = problem_from_response(httpx.Response(502, text="<html>bad gateway</html>"))
    assert type(error) is ProblemError
    assert (error.status, error.code, error.title) == (502, "http_502", "Bad Gateway")
    assert isinstance(problem_from_response(httpx.Response(404, text="nope")), NotFoundError)


def test_x0_errors_raised_by_a_handler_answer_as_the_gateway_would() -> None:
    gateway = MockGateway()
    outcomes = iter(
        [NotFound("no key k", details={"name": "k"}), Conflict("exists"), TooLarge("big")]
    )

    @gateway.on("read_key")
    def read_key(_: object) -> None:
        raise next(outcomes)

    with Client(transport=gateway) as x0:
        with pytest.raises(NotFoundError) as missing:
            x0.read_key(name="k")
        assert missing.value.details == {"name": "k"}
        with pytest.raises(ConflictError):
            x0.read_key(name="k")
        with pytest.raises(TooLargeError):
            x0.read_key(name="k")


async def test_async_errors_and_coroutine_handlers() -> None:
    gateway = MockGateway()

    @gateway.on("get_node")
    async def get_node(_: object) -> None:
        raise Overloaded("busy")

    async with AsyncClient(transport=gateway, retry=NO_RETRY) as x0:
        with pytest.raises(UnavailableError) as raised:
            await x0.get_node(node_id="n1")
    assert raised.value.code == "overloaded"


def test_a_success_that_is_not_the_result_model_is_an_unexpected_response() -> None:
    gateway = MockGateway(handlers={"list_keys": lambda _: {"names": "not a list"}})
    with Client(transport=gateway) as x0, pytest.raises(UnexpectedResponseError) as raised:
        x0.list_keys()
    assert raised.value.status == 200


def test_the_mock_refuses_unknown_routes_and_names() -> None:
    with pytest.raises(KeyError, match="no routed operation"):
        MockGateway().on("no_such_operation")
    answer = MockGateway().handle_request(httpx.Request("GET", "http://x/v1/nothing"))
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem_response(503, "unavailable", "t", retry_after="3").headers["retry-after"] == "3"
