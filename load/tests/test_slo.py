"""The plan and the SLO verdicts, without a system: what decides make load's exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
from load import plan, slo, stats

pytestmark = pytest.mark.unit


def test_users_are_split_by_weight_and_every_weighted_class_gets_one() -> None:
    assert plan.split_users(20, {"a": 4, "b": 4, "c": 8, "d": 4}) == {
        "a": 4,
        "b": 4,
        "c": 8,
        "d": 4,
    }
    assert plan.split_users(3, {"a": 100, "b": 1, "c": 1}) == {"a": 1, "b": 1, "c": 1}
    assert plan.split_users(5, {"a": 1, "b": 0}) == {"a": 5, "b": 0}


def test_mix_and_rate_overrides_reach_the_plan() -> None:
    resolved = plan.resolve(
        "default", users=10, mix="key_exchange=1,rag=0,mesh=0,operators=0", rates="key_exchange=3"
    )
    assert resolved.active.keys() == {"key_exchange"}
    assert resolved.offered == 30
    with pytest.raises(plan.PlanError):
        plan.resolve("default", mix="nobody=1")


def _operation(name: str, p95: float, requests: int = 100) -> stats.OperationStats:
    return stats.OperationStats(name, requests, 0, 0, p95 / 2, p95, p95 * 1.5, p95 / 2, 1.0)


def _class(offered: float, achieved: float, failures: int = 0) -> stats.ClassThroughput:
    return stats.ClassThroughput("rag", offered, achieved, 0.0, 0.0, 100, failures)


def test_a_slow_search_breaches_and_says_which() -> None:
    table = slo.load_table("default")
    checks = slo.evaluate(
        table, {"search[hybrid]": _operation("search[hybrid]", 900)}, {"rag": _class(10, 10)}
    )
    breached = [c.slo for c in slo.breaches(checks)]
    assert breached == ["p95 search[hybrid]", "p99 search[hybrid]"]


def test_too_few_samples_are_listed_not_judged() -> None:
    table = slo.load_table("default")
    checks = slo.evaluate(
        table, {"key_sign": _operation("key_sign", 5000, requests=3)}, {"rag": _class(1, 1)}
    )
    assert not slo.breaches(checks)
    assert [c.ok for c in checks if c.slo.endswith("key_sign")] == [None, None]


def test_falling_behind_the_offered_rate_and_errors_breach() -> None:
    table = slo.load_table("default")
    checks = slo.evaluate(table, {}, {"rag": _class(10, 9, failures=2)})
    assert {c.slo for c in slo.breaches(checks)} == {
        "throughput rag",
        "error rate rag",
        "error rate (all)",
    }


def test_a_429_row_is_counted_apart_from_its_operation(tmp_path: Path) -> None:
    header = (
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
        "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
        "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
    )
    row = "POST,{name},{n},{f},10,10,1,50,100,1.0,0,10,10,10,10,20,{p95},40,{p99},50,50,50\n"
    (tmp_path / "stats.csv").write_text(
        header
        + row.format(name="search[vector]", n=100, f=1, p95=30, p99=45)
        + row.format(name="search[vector] (429)", n=7, f=7, p95=1, p99=1)
        + ",Aggregated,107,8,10,10,1,50,100,1.0,0,10,10,10,10,20,30,40,45,50,50,50\n"
    )
    read = stats.read_stats(tmp_path / "stats.csv")
    assert list(read) == ["search[vector]"]
    assert (read["search[vector]"].failures, read["search[vector]"].rate_limited) == (1, 7)
    assert read["search[vector]"].p95 == 30
