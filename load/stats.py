"""A run's figures, read back from what Locust and the locustfile wrote.

- ``<prefix>_stats.csv`` (Locust): one row per request name over the steady window
  (the runner passes ``--reset-stats``: statistics restart once every user is spawned);
- ``requests.csv`` (the locustfile): every request with its caller class and outcome,
  for per-class throughput over the same window and for the charts.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The suffix of the row a name's 429 answers are reported under (load/users/base.py).
RATE_LIMITED = " (429)"
PERCENTILES = ("50%", "95%", "99%")
OUTCOMES = ("ok", "error", "rate_limited")


@dataclass(frozen=True)
class OperationStats:
    """One Locust row: a request name over the steady window (times in ms)."""

    name: str
    requests: int
    failures: int
    rate_limited: int
    p50: float
    p95: float
    p99: float
    average: float
    rps: float

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Record:
    """One request as the locustfile recorded it."""

    time: float
    caller_class: str
    phase: str  # setup, task or teardown
    name: str
    outcome: str  # ok, error, rate_limited
    ms: float


def read_stats(path: Path) -> dict[str, OperationStats]:
    """Locust's stats CSV by request name; a name's 429 row folds into ``rate_limited``."""
    rows: dict[str, dict[str, str]] = {}
    limited: dict[str, int] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["Name"]
            if name == "Aggregated":
                continue
            if name.endswith(RATE_LIMITED):
                key = name.removesuffix(RATE_LIMITED)
                limited[key] = limited.get(key, 0) + int(row["Request Count"])
                continue
            rows[name] = row
    stats = {}
    for name in set(rows) | set(limited):
        row = rows.get(name)
        if row is None:
            stats[name] = OperationStats(name, 0, 0, limited[name], 0, 0, 0, 0, 0)
            continue
        p50, p95, p99 = (_number(row[p]) for p in PERCENTILES)
        stats[name] = OperationStats(
            name=name,
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            rate_limited=limited.get(name, 0),
            p50=p50,
            p95=p95,
            p99=p99,
            average=_number(row["Average Response Time"]),
            rps=_number(row["Requests/s"]),
        )
    return dict(sorted(stats.items()))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0  # Locust writes N/A for a row without samples


def read_records(path: Path) -> list[Record]:
    """The locustfile's per-request rows."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [
            Record(
                float(r["time"]), r["class"], r["phase"], r["name"], r["outcome"], float(r["ms"])
            )
            for r in csv.DictReader(f)
        ]


def read_run(path: Path) -> dict[str, Any]:
    """The locustfile's run.json (empty when it did not get to write it)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def steady_window(run: dict[str, Any]) -> tuple[float, float] | None:
    """(start, end) unix times of the steady window: from every user spawned (when
    Locust's statistics restart) to the run time's end (when users start stopping)."""
    marks = run.get("marks", {})
    start = marks.get("spawning_complete")
    end = marks.get("test_stopping") or marks.get("test_stop")
    return (start, end) if start and end and end > start else None


@dataclass(frozen=True)
class ClassThroughput:
    """What a caller class offered and got over the steady window (requests/s)."""

    caller_class: str
    offered: float
    achieved: float  # successful requests per second
    errors: float  # failed requests per second
    rate_limited: float
    requests: int
    failures: int

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def class_throughput(
    records: list[Record], window: tuple[float, float], offered: dict[str, float]
) -> dict[str, ClassThroughput]:
    """Per caller class, from the task requests inside ``window`` (a user's setup and
    teardown requests are not what the class offers)."""
    start, end = window
    seconds = end - start
    result = {}
    for caller_class, rate in offered.items():
        mine = [
            r
            for r in records
            if r.caller_class == caller_class and r.phase == "task" and start <= r.time <= end
        ]
        counts = {
            o: sum(1 for r in mine if r.outcome == o) for o in ("ok", "error", "rate_limited")
        }
        result[caller_class] = ClassThroughput(
            caller_class=caller_class,
            offered=rate,
            achieved=counts["ok"] / seconds,
            errors=counts["error"] / seconds,
            rate_limited=counts["rate_limited"] / seconds,
            requests=counts["ok"] + counts["error"],
            failures=counts["error"],
        )
    return result
