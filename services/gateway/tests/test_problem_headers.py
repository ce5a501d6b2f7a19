"""Which problem answers say when to come back (``Retry-After``)."""

from __future__ import annotations

import pytest

from x0_common.errors import DeadlineExceeded, NotFound, Overloaded, Unavailable, X0Error
from x0_gateway.problems import retry_after

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error", [Unavailable("down"), Overloaded("busy"), DeadlineExceeded("no reply in time")]
)
def test_503_and_504_carry_retry_after_of_at_least_a_second(error: X0Error) -> None:
    assert retry_after(error) == {"Retry-After": "1"}


def test_a_given_retry_after_is_kept() -> None:
    error = DeadlineExceeded("no reply in time", details={"retry_after_seconds": 7})
    assert retry_after(error) == {"Retry-After": "7"}


def test_a_client_error_carries_none() -> None:
    assert retry_after(NotFound("no such key")) is None
