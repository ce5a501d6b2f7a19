"""The Grafana dashboards: generated, consistent, and naming only metrics the services declare.

The live-Prometheus test proves each query returns data; these checks need no services
and catch the cheap mistakes first (stale JSON, an undeclared name, a stray variable).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

# Unit tests need nothing installed; the two that run promtool (Debian's prometheus
# package, installed by `stack.sh up`) are integration tests, so `make test-unit`
# runs on a bare machine.

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
EXPECTED_UIDS = {"x0-gateway", "x0-crypto", "x0-rag", "x0-telemetry", "x0-kafka"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _load_generator() -> ModuleType:
    # deploy/ is not a package: load the generator from its file, with its folder leading
    # sys.path as when it runs as a script, so that it finds its sibling modules.
    spec = importlib.util.spec_from_file_location("x0_grafana_generate", GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(GRAFANA))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(GRAFANA))
    return module


generate = _load_generator()
QUERIES = generate.panel_queries()


def _committed() -> dict[str, dict]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def _without_strings(expr: str) -> str:
    """The expression with every quoted label value emptied (values may hold any character)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


@functools.cache
def _declared_metrics() -> frozenset[str]:
    sources = [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    return frozenset(
        name
        for source in sources
        for name in re.findall(r"""["'](x0_[a-z0-9_]+)["']""", source.read_text(encoding="utf-8"))
    )


def _query_id(query: tuple[str, str, str]) -> str:
    return f"{query[0]}:{query[1]}"


@pytest.mark.unit
def test_committed_json_is_what_the_generator_writes() -> None:
    rendered = generate.render()
    committed = {
        path.name: path.read_text(encoding="utf-8")
        for path in (GRAFANA / "dashboards").glob("*.json")
    }
    assert set(committed) == set(rendered), "run deploy/grafana/generate.py"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is stale: run deploy/grafana/generate.py"


@pytest.mark.unit
def test_the_live_test_gets_exactly_the_committed_panel_queries() -> None:
    committed = sorted(
        (board["uid"], panel["title"], target["expr"])
        for board in _committed().values()
        for panel in board["panels"]
        for target in panel["targets"]
    )
    assert sorted(QUERIES) == committed


@pytest.mark.unit
def test_one_dashboard_per_service_with_unique_stable_uids() -> None:
    uids = [board["uid"] for board in _committed().values()]
    assert sorted(uids) == sorted(EXPECTED_UIDS)
    for board in _committed().values():
        assert "x0" in board["tags"]
        assert board["templating"]["list"] == [], "panels may use no dashboard variable"


@pytest.mark.unit
def test_every_panel_says_what_it_answers_and_queries_prometheus() -> None:
    for board in _committed().values():
        titles = [panel["title"] for panel in board["panels"]]
        assert len(titles) == len(set(titles)), f"{board['uid']}: duplicate panel titles"
        assert len({panel["id"] for panel in board["panels"]}) == len(titles)
        for panel in board["panels"]:
            where = f"{board['uid']}: {panel['title']}"
            assert panel["type"] in {"timeseries", "stat"}, where
            assert panel["description"].strip(), where
            assert panel["datasource"]["uid"] == "prometheus", where
            assert panel["targets"], where
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target["datasource"]["uid"] == "prometheus", where


@pytest.mark.unit
def test_panels_fit_the_grid_without_overlapping() -> None:
    for board in _committed().values():
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= generate.GRID_WIDTH, panel["title"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                    cells[x, y] = panel["title"]


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
@pytest.mark.unit
def test_every_metric_is_declared_by_a_service(query: tuple[str, str, str]) -> None:
    declared = _declared_metrics()
    names = generate.metric_names(query[2])
    assert names, "a panel query names no x0_ metric"
    for name in names:
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
        assert name in declared or base in declared, f"{name} is declared in no libs/services src"


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
@pytest.mark.unit
def test_every_selector_is_filtered_by_service(query: tuple[str, str, str]) -> None:
    expr = _without_strings(query[2])
    selectors = re.findall(r"\b(x0_[a-z0-9_]+)(\{[^}]*\})?", expr)
    assert selectors
    for name, labels in selectors:
        assert "service=" in labels, f"{name} is not filtered by service"


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
@pytest.mark.unit
def test_only_rate_interval_is_used_as_a_variable_and_a_range(query: tuple[str, str, str]) -> None:
    expr = query[2]
    assert set(re.findall(r"\$\{?(\w+)", expr)) <= {"__rate_interval"}
    assert set(re.findall(r"\[([^\]]*)\]", _without_strings(expr))) <= {"$__rate_interval"}


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
@pytest.mark.unit
def test_brackets_and_quotes_balance(query: tuple[str, str, str]) -> None:
    expr = query[2]
    assert expr.count('"') % 2 == 0
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in _without_strings(expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack, f"unopened {char!r}"
            assert stack.pop() == pairs[char], f"mismatched {char!r}"
    assert not stack, f"unclosed {stack}"


@pytest.mark.integration
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    # The real PromQL parser, from Debian's prometheus package (CI installs it for the
    # rule checks too). Grafana substitutes $__rate_interval; any valid window will do.
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package")
    rules = [
        {"record": f"x0:panel_query:{number}", "expr": expr.replace("$__rate_interval", "1m")}
        for number, (_, _, expr) in enumerate(QUERIES)
    ]
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.unit
def test_provisioning_names_the_datasources_the_dashboards_use() -> None:
    provisioning = GRAFANA / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    by_uid = {source["uid"]: source for source in datasources["datasources"]}
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["jaeger"]["type"] == "jaeger"
    trace_links = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {link["datasourceUid"] for link in trace_links} <= set(by_uid)

    used = {
        target["datasource"]["uid"]
        for board in _committed().values()
        for panel in board["panels"]
        for target in panel["targets"]
    }
    assert used <= set(by_uid)

    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def _query(uid: str, title: str) -> list[str]:
    found = [expr for board, panel, expr in QUERIES if (board, panel) == (uid, title)]
    assert found, f"no panel {title!r} on {uid}"
    return found


@pytest.mark.integration
def test_panels_about_bad_events_show_zero_not_nothing(tmp_path: Path) -> None:
    """Prometheus's own engine (promtool test rules) on synthetic series.

    With traffic and no failure the panels show 0 (an empty panel would look like a
    broken query); with failures they show them, and padding never hides a real series.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package")
    steady = "0+60x10"  # one per second for ten minutes
    series = {
        'x0_http_requests_total{service="gateway",route="/ok",status="200"}': steady,
        'x0_http_requests_total{service="gateway",route="/bad",status="503"}': steady,
        'x0_requester_requests_total{service="gateway",type="t"}': steady,
        'x0_responder_handled_total{service="crypto",type="t",outcome="ok"}': steady,
        'x0_responder_handled_total{service="rag",type="t",outcome="ok"}': steady,
        'x0_responder_dead_lettered_total{service="rag",topic="x",reason="undecodable"}': steady,
    }
    checks = [
        (
            _query("x0-gateway", "5xx ratio by route")[0],
            [('{route="/ok"}', 0), ('{route="/bad"}', 1)],
        ),
        (_query("x0-gateway", "5xx ratio")[0], [("{}", 0.5)]),
        *[
            (expr, [('{type="t"}', 0)])
            for expr in _query("x0-gateway", "Requester timeouts and rejections")
        ],
        (_query("x0-crypto", "Dead-lettered by reason")[0], [("{}", 0)]),
        (
            _query("x0-kafka", "Dead-lettered by reason")[0],
            [('{service="crypto"}', 0), ('{service="rag",topic="x",reason="undecodable"}', 1)],
        ),
    ]
    tests = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": name, "values": values} for name, values in series.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": expr.replace("$__rate_interval", "5m"),
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": labels, "value": value} for labels, value in samples
                        ],
                    }
                    for expr, samples in checks
                ],
            }
        ],
    }
    path = tmp_path / "panels.test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
