"""The reply envelope and the error tree, the contract between gateway and workers."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from x0_common.errors import (
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    Unavailable,
    X0Error,
    error_for_code,
)
from x0_common.events.envelope import ErrorBody, Reply

pytestmark = pytest.mark.unit


class _Result(BaseModel):
    valid: bool


def test_a_result_reply_carries_the_results_own_json() -> None:
    reply = Reply.of_result(_Result(valid=True))
    assert reply.outcome == "result"
    assert json.loads(reply.body) == {"valid": True}
    assert reply.error() is None
    assert Reply.of_result(None).body == b"{}"


def test_an_error_reply_survives_the_wire() -> None:
    error = ErrorBody(code="invalid_input", message="bad", details={"field": "ct"})
    reply = Reply.of_error(error)
    assert reply.outcome == "error"
    assert Reply(reply.outcome, reply.body).error() == error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (Overloaded("x"), 503),
        (DeadlineExceeded("x"), 504),
    ],
)
def test_an_error_rebuilt_from_its_code_is_the_same_type(error: X0Error, status: int) -> None:
    rebuilt = error_for_code(error.code, error.message, {"k": "v"})
    assert type(rebuilt) is type(error)
    assert rebuilt.http_status == status
    assert rebuilt.details == {"k": "v"}


def test_overloaded_is_transient_so_the_responder_would_retry_it() -> None:
    assert isinstance(Overloaded("x"), Unavailable)


def test_a_code_from_a_newer_worker_is_kept_not_lost() -> None:
    rebuilt = error_for_code("a_code_from_the_future", "over quota")
    assert type(rebuilt) is X0Error
    assert rebuilt.http_status == 500
    assert rebuilt.details["remote_code"] == "a_code_from_the_future"
