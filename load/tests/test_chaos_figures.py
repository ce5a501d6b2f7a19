"""The chaos runner's and the soak's verdicts, without a system: per-fault figures from
recorded calls, and growth of a process's resources."""

from __future__ import annotations

import pytest
from load import chaos, soak

pytestmark = pytest.mark.unit

T0 = 1_000.0


def seen(at: float, status: int, *, ms: float = 50.0, retry_after: bool = False) -> chaos.Seen:
    ok = 200 <= status < 300
    return chaos.Seen(T0 + at, ms, status, retry_after, ok, "key_sign", str(status or "no answer"))


def steady(start: float, end: float) -> list[chaos.Seen]:
    """A call answered 200 every 0.2 s."""
    return [seen(start + i * 0.2, 200) for i in range(int((end - start) / 0.2))]


def test_a_fault_s_window_statuses_and_recovery() -> None:
    calls = sorted(
        [
            *steady(0, 5),
            seen(5.1, 504, ms=10_000, retry_after=True),
            seen(8.0, 503, retry_after=True),
            seen(9.0, 503),  # no Retry-After: counted
            *steady(10, 60),
        ],
        key=lambda c: c.time,
    )
    outcome = chaos.Outcome("kill-crypto", T0, T0 + 20, T0 + 60)
    chaos.figures(outcome, calls, [])
    assert outcome.errors == 3
    assert outcome.statuses == {"504": 1, "503": 2}
    assert outcome.error_window == pytest.approx((-4.9, 9.0))
    assert outcome.without_retry_after == 1
    assert outcome.hangs == 0
    assert outcome.server_errors == 0
    # The last window that holds a failure (the 503 answered at 9 s) starts at 9 s; the
    # next one, 10 to 20 s, meets the SLO and so does every later one.
    assert outcome.recovery_s == pytest.approx(20.0)


def test_recovery_waits_for_the_slo_to_hold_until_the_next_fault() -> None:
    calls = [*steady(0, 30), *(seen(31 + i, 500) for i in range(3)), *steady(34, 60)]
    outcome = chaos.Outcome("term-rag", T0, T0 + 40, T0 + 60)
    chaos.figures(outcome, sorted(calls, key=lambda c: c.time), [])
    assert outcome.server_errors == 3
    assert outcome.recovery_s == pytest.approx(34.0 + 10.0)


def test_a_fault_that_never_recovers_has_no_recovery_time() -> None:
    calls = [*steady(0, 10), *(seen(10 + i * 0.5, 0) for i in range(40))]
    outcome = chaos.Outcome("kill-gateway-b", T0, None, T0 + 30)
    chaos.figures(outcome, sorted(calls, key=lambda c: c.time), [])
    assert outcome.recovery_s is None
    assert outcome.statuses == {"no answer": 40}


def test_slow_answers_count_as_hangs_and_breach_the_latency_slo() -> None:
    calls = [*steady(0, 30), seen(12, 200, ms=14_000), seen(18, 200, ms=16_000)]
    outcome = chaos.Outcome("restart-postgres", T0, T0 + 20, T0 + 30)
    chaos.figures(outcome, sorted(calls, key=lambda c: c.time), [])
    assert outcome.hangs == 1
    assert outcome.slowest_ms == 16_000


def test_findings_are_counted_for_the_fault_they_happened_under() -> None:
    outcome = chaos.Outcome("kill-crypto", T0, T0 + 20, T0 + 60)
    findings = [
        chaos.Finding("duplicate", "key k", "versions [1, 2, 3]", "kill-crypto"),
        chaos.Finding("lost", "document d", "not readable", "kill-rag"),
        chaos.Finding("lost", "telemetry node n", "history", "kill-crypto,kill-rag"),
    ]
    chaos.figures(outcome, steady(0, 60), findings)
    assert (outcome.lost, outcome.duplicates) == (1, 1)


def test_every_fault_is_one_entry_and_the_broker_kill_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(chaos.CI_FAULTS) <= set(chaos.FAULTS)
    monkeypatch.setenv("X0_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    reason = chaos.FAULTS["kill-kafka-broker"].needs()
    assert reason is not None
    assert "3-broker" in reason
    monkeypatch.setenv("X0_KAFKA__BOOTSTRAP_SERVERS", "a:1,b:2,c:3")
    assert chaos.FAULTS["kill-kafka-broker"].needs() is None
    assert chaos.FAULTS["kill-crypto"].needs() is None


def test_writer_tokens_stay_distinct_under_stemming() -> None:
    ledger = chaos.Ledger(["http://a", "http://b"], "0a1b2c3d")
    tokens = [ledger.token(n) for n in range(1, 2000)]
    assert len(set(tokens)) == len(tokens)
    assert all(t.isalpha() and t.endswith("zq") for t in tokens)


def test_soak_growth_after_the_warm_up() -> None:
    start, end = 0.0, 1_000.0
    flat = [(t, 100, 20) for t in range(0, 1000, 10)]
    assert soak.grew(soak.growth(flat, start, end)) == []
    # Grows during the warm-up (first 200 s), then flat: fine.
    warming = [(t, 50 + min(t, 200) // 4, 20) for t in range(0, 1000, 10)]
    assert soak.grew(soak.growth(warming, start, end)) == []
    # Grows all along: the mean of 200-320 s (after the warm-up) against 880-1000 s.
    leaking = [(t, 100 + t // 10, 20 + t // 20) for t in range(0, 1000, 10)]
    assert soak.grew(soak.growth(leaking, start, end)) == [
        "RSS +54%",
        "open fds +105% (+34)",
    ]
    # A couple of descriptors more is noise, even past 10%.
    few = [(t, 100, 10 + (t > 900) * 3) for t in range(0, 1000, 10)]
    assert soak.grew(soak.growth(few, start, end)) == []
