"""Retries: which answers and failures are sent again, after how long, how many times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from x0_client import (
    AsyncClient,
    Client,
    ConflictError,
    DeadlineExceededError,
    ProblemError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
    UnavailableError,
    UnexpectedResponseError,
)
from x0_client.retry import retry_after_seconds
from x0_client.testing import MockGateway, Problem, problem_response
from x0_common.errors import Overloaded
from x0_common.events import crypto as c

pytestmark = pytest.mark.unit

PAIR = c.KeypairResult(algorithm="ML-KEM-768", public_key=b"pk", secret_key=b"sk")
KEY = c.EncryptResult(ciphertext="x0:v1:AA", version=1)


class Waits(list[float]):
    """Records the waits instead of sleeping."""

    def sleep(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.append(seconds)


def policy(waits: Waits, **overrides: object) -> RetryPolicy:
    return RetryPolicy(
        sleep=waits.sleep,
        async_sleep=waits.async_sleep,
        random=lambda: 1.0,
        **overrides,  # type: ignore[arg-type]
    )


def answers(*outcomes: object) -> Callable[[object], object]:
    """A handler that answers ``outcomes`` in turn (raising the exceptions)."""
    queue: Iterator[object] = iter(outcomes)

    def handle(_: object) -> object:
        outcome = next(queue)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return handle


def test_503_is_retried_with_growing_full_jitter_and_the_same_idempotency_key() -> None:
    waits = Waits()
    gateway = MockGateway()
    gateway.handlers["kem_keypair"] = answers(Overloaded("busy"), Problem(503, "unavailable"), PAIR)
    with Client(transport=gateway, retry=policy(waits, max_attempts=3, base_delay=0.5)) as x0:
        assert x0.kem_keypair(algorithm="ML-KEM-768") == PAIR
    # random() = 1: the ceiling of each full-jitter wait, 0.5 then 1.0.
    assert waits == [0.5, 1.0]
    keys = {call.http.headers["idempotency-key"] for call in gateway.calls}
    assert len(gateway.calls) == 3
    assert len(keys) == 1


def test_full_jitter_stays_under_the_ceiling() -> None:
    bounded = RetryPolicy(base_delay=1.0, max_delay=4.0, random=lambda: 0.999)
    assert [round(bounded.backoff(n), 3) for n in (1, 2, 3, 4, 5)] == [
        0.999,
        1.998,
        3.996,
        3.996,
        3.996,
    ]
    assert RetryPolicy(random=lambda: 0.0).backoff(3) == 0.0


def test_retry_after_is_honoured_in_seconds_and_as_a_date() -> None:
    waits = Waits()
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    gateway = MockGateway()
    gateway.handlers["kem_keypair"] = answers(
        problem_response(429, "rate_limited", "slow down", retry_after="7"),
        problem_response(503, "unavailable", "later", retry_after=later),
        PAIR,
    )
    with Client(transport=gateway, retry=policy(waits)) as x0:
        x0.kem_keypair(algorithm="ML-KEM-768")
    assert waits[0] == 7.0
    assert 28.0 <= waits[1] <= 30.0


def read_key_always(
    answer: Callable[[], httpx.Response], **options: object
) -> tuple[MockGateway, Waits, ProblemError]:
    """Calls ``read_key`` against a gateway that always gives a fresh ``answer()``,
    under ``policy(**options)``: the gateway (its calls), the waits and what was raised."""
    waits = Waits()
    gateway = MockGateway(handlers={"read_key": lambda _: answer()})
    with (
        Client(transport=gateway, retry=policy(waits, **options)) as x0,
        pytest.raises(ProblemError) as raised,
    ):
        x0.read_key(name="k")
    return gateway, waits, raised.value


def test_attempts_are_bounded_and_the_last_answer_is_raised_with_its_retry_after() -> None:
    gateway, waits, raised = read_key_always(
        lambda: problem_response(429, "rate_limited", "no", retry_after="1"), max_attempts=4
    )
    assert isinstance(raised, RateLimitedError)
    assert len(gateway.calls) == 4
    assert waits == [1.0, 1.0, 1.0]
    assert raised.retry_after == 1.0


def test_a_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    gateway, waits, raised = read_key_always(
        lambda: problem_response(503, "unavailable", "down", retry_after="3600"),
        max_retry_after=60,
    )
    assert isinstance(raised, UnavailableError)
    assert (len(gateway.calls), waits, raised.retry_after) == (1, [], 3600.0)


def test_other_errors_are_not_retried() -> None:
    gateway, _, raised = read_key_always(lambda: problem_response(504, "deadline_exceeded", "slow"))
    assert isinstance(raised, DeadlineExceededError)
    assert len(gateway.calls) == 1


class Flaky(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Fails the first ``failures`` sends with ``error``, then asks ``inner``."""

    def __init__(
        self, inner: MockGateway, error: type[httpx.TransportError], failures: int
    ) -> None:
        self.inner, self.error, self.failures, self.sends = inner, error, failures, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sends += 1
        if self.sends <= self.failures:
            raise self.error("boom", request=request)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sends += 1
        if self.sends <= self.failures:
            raise self.error("boom", request=request)
        return await self.inner.handle_async_request(request)


def test_a_refused_connection_is_retried_for_any_operation() -> None:
    gateway = MockGateway(handlers={"key_encrypt": lambda _: KEY})
    flaky = Flaky(gateway, httpx.ConnectError, failures=2)
    with Client(transport=flaky, retry=policy(Waits())) as x0:
        assert x0.key_encrypt(name="k", plaintext=b"x") == KEY
    assert flaky.sends == 3


def test_a_broken_answer_is_retried_only_where_sending_twice_is_harmless() -> None:
    # kem_keypair is side-effect free (scope crypto): sent again after a read timeout.
    flaky = Flaky(MockGateway(handlers={"kem_keypair": lambda _: PAIR}), httpx.ReadTimeout, 1)
    with Client(transport=flaky, retry=policy(Waits())) as x0:
        assert x0.kem_keypair(algorithm="ML-KEM-768") == PAIR
    # key_encrypt uses a managed key (it may have been applied): raised at once.
    flaky = Flaky(MockGateway(handlers={"key_encrypt": lambda _: KEY}), httpx.ReadTimeout, 1)
    with Client(transport=flaky, retry=policy(Waits())) as x0, pytest.raises(RequestTimeoutError):
        x0.key_encrypt(name="k", plaintext=b"x")
    assert flaky.sends == 1
    # A reset connection is a TransportError (not a timeout), for reads retried too.
    flaky = Flaky(MockGateway(handlers={"read_key": lambda _: KEY}), httpx.RemoteProtocolError, 5)
    with (
        Client(transport=flaky, retry=policy(Waits(), max_attempts=2)) as x0,
        pytest.raises(TransportError) as raised,
    ):
        x0.read_key(name="k")
    assert flaky.sends == 2
    assert not isinstance(raised.value, RequestTimeoutError)


async def test_the_async_client_retries_the_same_way() -> None:
    waits = Waits()
    gateway = MockGateway()
    gateway.handlers["kem_keypair"] = answers(
        problem_response(503, "unavailable", "later", retry_after="2"), PAIR
    )
    flaky = Flaky(gateway, httpx.ConnectError, failures=1)
    async with AsyncClient(transport=flaky, retry=policy(waits)) as x0:
        assert await x0.kem_keypair(algorithm="ML-KEM-768") == PAIR
    assert waits == [0.5, 2.0]
    assert len({call.http.headers["idempotency-key"] for call in gateway.calls}) == 1


def test_retry_after_parsing() -> None:
    def header(value: str) -> float | None:
        return retry_after_seconds(httpx.Response(503, headers={"retry-after": value}))

    assert header("0") == 0.0
    assert header("120") == 120.0
    assert header("soon") is None
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert header(past) == 0.0
    assert retry_after_seconds(httpx.Response(503)) is None
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_a_conflict_with_retry_after_is_a_request_still_running() -> None:
    waits = Waits()
    gateway = MockGateway()
    gateway.handlers["rotate_key"] = answers(
        problem_response(
            409, "conflict", "the same Idempotency-Key is in progress", retry_after="1"
        ),
        c.KeyNameRequest(name="k"),
    )
    with (
        Client(transport=gateway, retry=policy(waits)) as x0,
        pytest.raises(UnexpectedResponseError),
    ):
        x0.rotate_key(name="k")  # answered, after the wait, by a model that is not KeyInfo
    assert waits == [1.0]
    gateway.handlers["rotate_key"] = lambda _: problem_response(409, "conflict", "exists")
    with Client(transport=gateway, retry=policy(waits)) as x0, pytest.raises(ConflictError):
        x0.rotate_key(name="k")
    assert waits == [1.0], "a plain conflict is not retried"
