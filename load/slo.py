"""The SLOs of ``load/slo.toml``, checked against a run's figures.

Checks, each a line of the report and of ``summary.json``:

- ``p95``/``p99`` per request name (from Locust's statistics), against the row for the
  name (``kem_encapsulate[X-Wing]``), else its operation (``kem_encapsulate``), else
  ``"*"``; names with fewer than ``min_samples`` requests are listed, not judged;
- error rate per caller class and over all (429s are not errors: they have their own
  ``max_rate_limited`` share);
- throughput: each class's successful requests per second reach ``min_throughput`` of
  what it offered (users x rate), i.e. the system kept up with the offered load.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from load.stats import ClassThroughput, OperationStats

SLO_FILE = Path(__file__).with_name("slo.toml")


@dataclass(frozen=True)
class Check:
    """One SLO against its measurement."""

    slo: str  # e.g. "p95 kem_encapsulate[X-Wing]"
    target: str
    measured: str
    ok: bool | None  # None: not judged (too few samples)

    def line(self) -> str:
        verdict = {True: "ok    ", False: "BREACH", None: "--    "}[self.ok]
        return f"{verdict} {self.slo:<44} {self.measured:>14}  (SLO {self.target})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_table(profile: str, path: Path = SLO_FILE) -> dict[str, Any]:
    """The SLO table of ``profile``."""
    tables = tomllib.loads(path.read_text())
    if profile not in tables:
        msg = f"no SLO table [{profile}] in {path} (have: {', '.join(tables)})"
        raise KeyError(msg)
    return dict(tables[profile])


def latency_targets(table: dict[str, Any], name: str) -> dict[str, float]:
    """The p95/p99 targets (ms) for a request name."""
    latency = table["latency"]
    operation = name.split("[", 1)[0]
    for key in (name, operation, "*"):
        if key in latency:
            return dict(latency[key])
    return {}


def evaluate(
    table: dict[str, Any],
    operations: dict[str, OperationStats],
    classes: dict[str, ClassThroughput],
) -> list[Check]:
    """Every check of the table against a run's figures."""
    checks: list[Check] = []
    min_samples = int(table.get("min_samples", 1))
    for name, stats in operations.items():
        if stats.requests == 0:
            continue
        for percentile in ("p95", "p99"):
            target = latency_targets(table, name).get(percentile)
            if target is None:
                continue
            measured = getattr(stats, percentile)
            judged = stats.requests >= min_samples
            checks.append(
                Check(
                    slo=f"{percentile} {name}",
                    target=f"<= {target:g} ms",
                    measured=f"{measured:g} ms" + ("" if judged else f" (n={stats.requests})"),
                    ok=(measured <= target) if judged else None,
                )
            )
    max_errors = float(table["max_error_rate"])
    for caller_class, figures in classes.items():
        checks.append(_ratio(f"error rate {caller_class}", figures.error_rate, max_errors))
    total = sum(c.requests for c in classes.values())
    failed = sum(c.failures for c in classes.values())
    checks.append(_ratio("error rate (all)", failed / total if total else 0.0, max_errors))
    limited = sum(o.rate_limited for o in operations.values())
    all_requests = total + limited
    checks.append(
        _ratio(
            "rate limited, 429 (all)",
            limited / all_requests if all_requests else 0.0,
            float(table["max_rate_limited"]),
        )
    )
    share = float(table["min_throughput"])
    for caller_class, figures in classes.items():
        wanted = share * figures.offered
        checks.append(
            Check(
                slo=f"throughput {caller_class}",
                target=f">= {wanted:.2f} req/s ({share:.0%} of {figures.offered:g})",
                measured=f"{figures.achieved:.2f} req/s",
                ok=figures.achieved >= wanted,
            )
        )
    return checks


def _ratio(slo: str, measured: float, most: float) -> Check:
    return Check(slo=slo, target=f"<= {most:.2%}", measured=f"{measured:.2%}", ok=measured <= most)


def breaches(checks: list[Check]) -> list[Check]:
    """The checks that failed."""
    return [c for c in checks if c.ok is False]
