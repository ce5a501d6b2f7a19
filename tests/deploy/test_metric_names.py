"""Every metric an alert or rule test names is one some service exports, and the
catalogue in docs/observability.md lists exactly the metrics the code declares.

The declared metrics are read from the source (``Counter("x0_...", ..., [labels])``
and the other prometheus_client constructors) of libs/ and services/, so a renamed
metric, a typo in a rule or a metric missing from the catalogue fails here instead of
in front of an operator whose alert never fires.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import pytest
from tests.deploy.monitoring import (
    OBSERVABILITY_DOC,
    REPO,
    all_rules,
    load_yaml,
    rule_test_files,
)

pytestmark = pytest.mark.integration

# Constructor -> metric type; the *MetricFamily ones are what custom collectors yield.
CONSTRUCTORS = {
    "Counter": "counter",
    "Gauge": "gauge",
    "Histogram": "histogram",
    "Summary": "summary",
    "CounterMetricFamily": "counter",
    "GaugeMetricFamily": "gauge",
    "HistogramMetricFamily": "histogram",
    "SummaryMetricFamily": "summary",
}
# x0_common.metrics.MetricFactory's methods: labels are ``service`` then the string
# arguments after the documentation.
FACTORY_METHODS = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}
# Samples a metric of each type is exported as, by suffix of the declared name.
SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


@dataclass(frozen=True)
class Declared:
    """One metric as the code declares it."""

    name: str
    kind: str
    labels: tuple[str, ...]
    where: str


def _labels(call: ast.Call) -> tuple[str, ...]:
    node: ast.expr | None = call.args[2] if len(call.args) > 2 else None
    for keyword in call.keywords:
        if keyword.arg in {"labelnames", "labels"}:
            node = keyword.value
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(e.value for e in node.elts if isinstance(e, ast.Constant))
    return ()


def _factory_labels(call: ast.Call) -> tuple[str, ...]:
    labels = (a.value for a in call.args[2:] if isinstance(a, ast.Constant))
    return ("service", *(label for label in labels if isinstance(label, str)))


def declared_metrics() -> dict[str, Declared]:
    """Every ``x0_`` metric constructed in the source of libs/ and services/, directly
    or through ``MetricFactory``."""
    found: dict[str, Declared] = {}
    sources = [*REPO.glob("libs/*/src/**/*.py"), *REPO.glob("services/*/src/**/*.py")]
    for path in sorted(sources):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                continue
            if not first.value.startswith("x0_"):
                continue
            if called in CONSTRUCTORS:
                kind, labels = CONSTRUCTORS[called], _labels(node)
            elif isinstance(func, ast.Attribute) and called in FACTORY_METHODS:
                kind, labels = FACTORY_METHODS[called], _factory_labels(node)
            else:
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            found[first.value] = Declared(first.value, kind, labels, where)
    return found


def exported_samples(declared: dict[str, Declared]) -> set[str]:
    """The sample names Prometheus sees for the declared metrics."""
    return {m.name + suffix for m in declared.values() for suffix in SUFFIXES[m.kind]}


def names_in(expr: str) -> set[str]:
    """The metric and recording-rule names a PromQL expression reads.

    String literals (label values, label_replace arguments) are removed first; what is
    left that starts with ``x0_`` or holds a ``:`` is a series name (functions,
    keywords and label names never do). Ranges such as ``[5m]`` contain neither.
    """
    bare = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    tokens = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare)
    return {t for t in tokens if t.startswith("x0_") or ":" in t}


def unknown_names(expr: str, known: set[str]) -> set[str]:
    """Names in ``expr`` that are neither exported nor recorded."""
    return names_in(expr) - known


@pytest.fixture(scope="module")
def declared() -> dict[str, Declared]:
    found = declared_metrics()
    # Guards the scan itself: it must see the metrics of every service.
    for prefix in ("x0_http_", "x0_requester_", "x0_responder_", "x0_crypto_", "x0_rag_"):
        assert any(name.startswith(prefix) for name in found), f"no {prefix}* declared"
    for prefix in ("x0_telemetry_", "x0_kafka_"):
        assert any(name.startswith(prefix) for name in found), f"no {prefix}* declared"
    return found


@pytest.fixture(scope="module")
def known(declared: dict[str, Declared]) -> set[str]:
    recorded = {rule["record"] for rule in all_rules() if "record" in rule}
    return exported_samples(declared) | recorded | PROMETHEUS_SERIES


def test_every_rule_reads_only_exported_or_recorded_series(known: set[str]) -> None:
    problems = [
        f"{rule.get('alert') or rule.get('record')}: {sorted(unknown)}"
        for rule in all_rules()
        if (unknown := unknown_names(rule["expr"], known))
    ]
    assert not problems, "rules name series nobody exports:\n" + "\n".join(problems)


def test_a_misspelt_metric_in_a_rule_is_caught(known: set[str]) -> None:
    # The negative control of the check above.
    expr = 'sum(rate(x0_http_request_total{status=~"5.."}[5m])) / sum(x0:not_recorded:rate5m)'
    assert unknown_names(expr, known) == {"x0_http_request_total", "x0:not_recorded:rate5m"}
    assert not unknown_names('rate(x0_http_requests_total{route="x0_not_a_metric"}[5m])', known)


def test_rule_unit_tests_feed_only_exported_series(known: set[str]) -> None:
    # A quiet case fed a misspelt series would pass without testing anything.
    problems = []
    for path in rule_test_files():
        for group in load_yaml(path)["tests"]:
            for series in group.get("input_series", []):
                name = series["series"].split("{", 1)[0].strip()
                if name not in known:
                    problems.append(f"{path.name} {group.get('name')}: {name}")
    assert not problems, "unit tests feed series nobody exports:\n" + "\n".join(problems)


def test_every_metric_carries_the_service_label(declared: dict[str, Declared]) -> None:
    missing = [f"{m.name} ({m.where})" for m in declared.values() if "service" not in m.labels]
    assert not missing, f"metrics without a `service` label: {missing}"


CATALOGUE_ROW = re.compile(
    r"^\|\s*`(?P<name>x0_[a-z0-9_]+)`\s*\|\s*(?P<kind>\w+)\s*\|(?P<labels>[^|]*)\|", re.MULTILINE
)


def test_the_catalogue_lists_every_metric_with_its_type_and_labels(
    declared: dict[str, Declared],
) -> None:
    rows = {
        match["name"]: (
            match["kind"],
            tuple(label.strip(" `") for label in match["labels"].split(",") if label.strip(" `")),
        )
        for match in CATALOGUE_ROW.finditer(OBSERVABILITY_DOC.read_text())
    }
    problems = [
        f"{name}: not in the catalogue ({m.where})"
        for name, m in declared.items()
        if name not in rows
    ]
    problems += [f"{name}: in the catalogue, declared nowhere" for name in rows.keys() - declared]
    for name in rows.keys() & declared.keys():
        metric, (kind, labels) = declared[name], rows[name]
        if kind != metric.kind:
            problems.append(f"{name}: catalogue says {kind}, code declares {metric.kind}")
        if set(labels) != set(metric.labels):
            problems.append(f"{name}: catalogue labels {labels}, code {metric.labels}")
    assert not problems, f"{OBSERVABILITY_DOC} disagrees with the code:\n" + "\n".join(problems)


def test_the_source_scan_reads_labels_of_both_declaration_styles() -> None:
    code = (
        'Counter("x0_a_total", "h", ["service", "kind"], registry=r)\n'
        'GaugeMetricFamily("x0_b", "h", labels=["service", "topic"])\n'
    )
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    assert [_labels(c) for c in calls] == [("service", "kind"), ("service", "topic")]
