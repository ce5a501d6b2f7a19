"""The dashboards, proven against live metrics: the real Prometheus scrapes every
service of the session while traffic goes through every capability; then every
panel query of every dashboard in ``deploy/grafana/dashboards`` must return data, and
every metric a panel names must be exported by a service (a panel whose query names a
metric nobody exports fails, even behind an ``or 0 * ...`` fallback).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.system.conftest import (
    REPO,
    TELEMETRY_MAX_NODE_SERIES,
    Prometheus,
    PrometheusError,
    RunningService,
)
from tests.system.traffic import crypto_traffic, rag_traffic, telemetry_traffic
from x0_common.testing.stack import StackEndpoints

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
RULES = REPO / "deploy" / "prometheus" / "rules"
# The window of every rate: the whole run fits in it at a 1 s scrape interval.
RATE_INTERVAL = "1m"
# A series name: not followed by "(" (a function) nor inside a label matcher or a
# "by (...)" clause, which the extraction below strips first.
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_NOT_NAMES = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "or",
    "and",
    "unless",
    "bool",
    "offset",
    "le",
    "inf",
    "nan",
}
# Families are named without these (histogram series; counters in the metadata).
_SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel target, rows included."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())

        def walk(panels: list[dict[str, Any]], file: str = path.name) -> None:
            for panel in panels:
                walk(panel.get("panels", []))
                for target in panel.get("targets", []):
                    if target.get("expr"):
                        found.append((file, panel.get("title", "?"), target["expr"]))

        walk(board.get("panels", []))
    return found


def metric_names(expression: str) -> set[str]:
    """The series names an expression reads (label matchers, grouping and durations out)."""
    stripped = re.sub(r"\{[^}]*\}", " ", expression)
    stripped = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped
    )
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r'"[^"]*"', " ", stripped)
    return {
        name
        for name in _NAME.findall(stripped)
        if name.lower() not in _NOT_NAMES and not name[0].isdigit()
    }


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_panel_query_returns_data_from_live_services(
    client: httpx.Client,
    prometheus: Prometheus,
    services: dict[str, RunningService],
    stack: StackEndpoints,
) -> None:
    queries = panel_queries()
    assert queries, f"no panel queries in {DASHBOARDS}"
    crypto_traffic(client)
    rag_traffic(client)
    # More nodes than the node-series cap, so the refused-series counter moves too.
    telemetry_traffic(client, stack.kafka_bootstrap, nodes=TELEMETRY_MAX_NODE_SERIES + 5)
    prometheus.wait_for_scrapes(2)

    # Metadata (HELP/TYPE) of every metric family a target exports, samples or not,
    # and the series the recording rules make.
    exported = set(prometheus.api("metadata")) | {
        rule["name"]
        for group in prometheus.api("rules", type="record")["groups"]
        for rule in group["rules"]
    }
    failing = []
    for board, title, expression in queries:
        query = expression.replace("$__rate_interval", RATE_INTERVAL)
        unknown = sorted(
            name
            for name in metric_names(query)
            if name not in exported and _family(name) not in exported
        )
        if unknown:
            failing.append(f"{board} / {title}: names metrics nobody exports {unknown}: {query}")
            continue
        try:
            result = prometheus.query(query)
        except PrometheusError as error:
            failing.append(f"{board} / {title}: {error}: {query}")
            continue
        if not result:
            failing.append(f"{board} / {title}: no data: {query}")
    assert not failing, f"{len(failing)} of {len(queries)} panel queries fail:\n" + "\n".join(
        failing
    )


def test_prometheus_loaded_and_evaluates_every_rule_file(prometheus: Prometheus) -> None:
    files = sorted(RULES.glob("*.yml")) + sorted(RULES.glob("*.yaml"))
    assert files, f"no rule files in {RULES}"
    expected = {
        (group["name"], rule.get("alert") or rule.get("record"))
        for path in files
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    deadline = time.monotonic() + 60
    # Until every rule was evaluated once (a group may set an interval of its own).
    while True:
        loaded = prometheus.api("rules")["groups"]
        if all(rule.get("health") != "unknown" for g in loaded for rule in g["rules"]):
            break
        assert time.monotonic() < deadline, "rules not evaluated within 60 s"
        time.sleep(0.5)
    seen = {(group["name"], rule["name"]) for group in loaded for rule in group["rules"]}
    assert expected <= seen, f"rules not loaded: {sorted(expected - seen)}"
    broken = [
        f"{group['name']} / {rule['name']}: {rule.get('health')} {rule.get('lastError')!r}"
        for group in loaded
        for rule in group["rules"]
        if rule.get("health") != "ok"
    ]
    assert not broken, "rules Prometheus cannot evaluate:\n" + "\n".join(broken)
    assert {Path(group["file"]).name for group in loaded} == {path.name for path in files}
