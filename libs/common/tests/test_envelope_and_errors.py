"""The reply envelope and the error tree, the contract between gateway and workers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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


def test_a_reply_holds_a_result_or_an_error_never_both_nor_neither() -> None:
    assert Reply(result={"a": 1}).result == {"a": 1}
    assert Reply(error=ErrorBody(code="not_found", message="no such key")).error is not None
    with pytest.raises(ValidationError):
        Reply()
    with pytest.raises(ValidationError):
        Reply(result={}, error=ErrorBody(code="internal", message="x"))


def test_a_reply_survives_the_wire() -> None:
    reply = Reply(error=ErrorBody(code="invalid_input", message="bad", details={"field": "ct"}))
    assert Reply.model_validate_json(reply.model_dump_json(exclude_none=True)) == reply


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
    rebuilt = error_for_code("quota_exceeded", "over quota")
    assert type(rebuilt) is X0Error
    assert rebuilt.http_status == 500
    assert rebuilt.details["remote_code"] == "quota_exceeded"
