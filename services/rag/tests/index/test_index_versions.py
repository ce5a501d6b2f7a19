"""Version tokens and bounded waits for applied versions."""

from __future__ import annotations

import asyncio

import pytest

from x0_common import errors as common
from x0_rag.adapters.index.versions import AppliedVersions, parse_token
from x0_rag.errors import InvalidInput, VersionNotApplied

pytestmark = pytest.mark.unit


def test_tokens_parse_and_reject_anything_else() -> None:
    assert parse_token("3:120") == (3, 120)
    for bad in ("3", "3:", ":1", "a:1", "1:-2", "1:2:3"):
        with pytest.raises(InvalidInput):
            parse_token(bad)


async def test_a_covered_version_returns_at_once() -> None:
    applied = AppliedVersions({0: 10})
    async with asyncio.timeout(0.1):
        await applied.wait_for("0:10", timeout=5)
        await applied.wait_for("0:3", timeout=0)


async def test_waiters_wake_when_their_version_is_applied_and_not_before() -> None:
    applied = AppliedVersions()
    early = asyncio.create_task(applied.wait_for("1:5", timeout=5))
    late = asyncio.create_task(applied.wait_for("1:9", timeout=5))
    other = asyncio.create_task(applied.wait_for("0:1", timeout=5))
    await asyncio.sleep(0.01)
    applied.advance(1, 4)
    await asyncio.sleep(0.01)
    assert not early.done()
    applied.advance(1, 7)
    await asyncio.wait_for(early, 1)
    assert not late.done()
    assert not other.done()
    applied.advance(1, 9)
    applied.advance(0, 1)
    await asyncio.wait_for(asyncio.gather(late, other), 1)
    assert applied.as_dict() == {0: 1, 1: 9}


async def test_applied_versions_never_go_back() -> None:
    applied = AppliedVersions({2: 50})
    applied.advance(2, 40)
    assert applied.get(2) == 50
    assert applied.get(5) == -1


async def test_a_wait_that_runs_out_is_a_typed_504() -> None:
    applied = AppliedVersions({0: 3})
    with pytest.raises(VersionNotApplied) as late:
        await applied.wait_for("0:8", timeout=0.05)
    error = late.value
    assert isinstance(error, common.DeadlineExceeded)
    assert (error.code, error.http_status) == ("deadline_exceeded", 504)
    assert error.details["version"] == "0:8"
    assert error.details["applied"] == "0:3"
    assert error.details["waited_ms"] >= 50
    # A timed-out waiter is not woken later (and nothing leaks into the next wait).
    applied.advance(0, 8)
    await applied.wait_for("0:8", timeout=0)
