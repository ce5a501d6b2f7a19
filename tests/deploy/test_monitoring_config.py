"""The Prometheus and Alertmanager configuration, checked by the real tools.

``promtool check config``, ``promtool check rules``, ``promtool test rules`` and
``amtool check-config`` / ``amtool config routes test`` run as subprocesses; a missing
tool fails (see :mod:`tests.deploy.monitoring`). Marked ``integration``: the tools are
external programs that ``deploy/local-stack/stack.sh up`` installs, as it does the
broker and databases the other integration tests use (``make test`` runs it first).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.deploy.monitoring import (
    ALERTMANAGER_DIR,
    OBSERVABILITY_DOC,
    PROMETHEUS_DIR,
    alerting_rules,
    load_yaml,
    rule_files,
    rule_test_files,
    run_tool,
)

pytestmark = pytest.mark.integration

PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_YML = ALERTMANAGER_DIR / "alertmanager.yml"
# Where each x0 service serves /metrics: the gateway on its metrics port, not its API's.
X0_SERVICE_PORTS = {9100: "gateway", 8001: "crypto", 8002: "rag", 8003: "telemetry"}


def test_promtool_check_config_accepts_prometheus_yml_and_its_rule_files() -> None:
    run = run_tool("promtool", "check", "config", PROMETHEUS_YML)
    assert run.returncode == 0, run.describe()
    # check config checks every rule file the config loads: all of ours, not none.
    assert f"SUCCESS: {len(rule_files())} rule files found" in run.output, run.describe()


def test_promtool_check_rules_accepts_every_rule_file() -> None:
    files = rule_files()
    assert files, "deploy/prometheus/rules/ holds no *.yml"
    run = run_tool("promtool", "check", "rules", *files)
    assert run.returncode == 0, run.describe()
    for path in files:
        count = sum(len(group["rules"]) for group in load_yaml(path)["groups"])
        assert f"Checking {path}\n  SUCCESS: {count} rules found" in run.output, run.describe()


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    files = rule_test_files()
    assert files, "deploy/prometheus/tests/ holds no *.yml"
    run = run_tool("promtool", "test", "rules", *files)
    assert run.returncode == 0, run.describe()
    assert run.output.count("SUCCESS") == len(files), run.describe()


def test_promtool_rejects_a_broken_rule_file(tmp_path: Path) -> None:
    # The negative control: promtool really reads and judges what it is given.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: broken\n    rules:\n"
        "      - alert: Broken\n        expr: rate(x0_http_requests_total[5m]\n"
    )
    run = run_tool("promtool", "check", "rules", broken)
    assert run.returncode != 0, run.describe()
    assert "broken.yml" in run.output, run.describe()


def test_promtool_fails_a_unit_test_whose_expectation_is_wrong(tmp_path: Path) -> None:
    source = PROMETHEUS_DIR / "tests" / "services_test.yml"
    text = source.read_text()
    # Rule files are resolved against the test file's folder; point at the originals.
    text = text.replace("../rules/", f"{PROMETHEUS_DIR / 'rules'}/")
    assert "severity: critical" in text
    wrong = tmp_path / "wrong_test.yml"
    wrong.write_text(text.replace("severity: critical", "severity: warning", 1))
    run = run_tool("promtool", "test", "rules", wrong)
    assert run.returncode != 0, run.describe()
    assert "FAILED" in run.output, run.describe()


def test_amtool_check_config_accepts_alertmanager_yml() -> None:
    run = run_tool("amtool", "check-config", ALERTMANAGER_YML)
    assert run.returncode == 0, run.describe()
    assert "SUCCESS" in run.output, run.describe()


def _receiver_for(labels: dict[str, str], expected: str) -> None:
    args = [f"{name}={value}" for name, value in sorted(labels.items())]
    run = run_tool(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_YML}",
        f"--verify.receivers={expected}",
        *args,
    )
    assert run.returncode == 0, run.describe()


@pytest.mark.parametrize("rule", alerting_rules(), ids=[rule["alert"] for rule in alerting_rules()])
def test_every_alert_routes_to_the_receiver_of_its_severity(rule: dict[str, Any]) -> None:
    labels = {"alertname": rule["alert"], "service": "crypto", **rule["labels"]}
    _receiver_for(labels, "pager" if labels["severity"] == "critical" else "ticket")


def test_an_alert_without_severity_still_reaches_a_receiver() -> None:
    _receiver_for({"alertname": "SomethingNew", "service": "rag"}, "ticket")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_severity_for_summary_description_and_a_runbook_that_exists() -> None:
    anchors = _anchors(OBSERVABILITY_DOC.read_text())
    problems = []
    for rule in alerting_rules():
        name = rule["alert"]
        if rule.get("labels", {}).get("severity") not in {"critical", "warning"}:
            problems.append(f"{name}: severity must be critical or warning")
        if "for" not in rule:
            problems.append(f"{name}: no `for:`")
        annotations = rule.get("annotations", {})
        missing = {"summary", "description", "runbook"} - set(annotations)
        if missing:
            problems.append(f"{name}: no {sorted(missing)} annotation")
        runbook = annotations.get("runbook", "")
        doc, _, anchor = runbook.partition("#")
        if doc != "docs/observability.md" or anchor not in anchors:
            problems.append(f"{name}: runbook {runbook!r} is no heading of {OBSERVABILITY_DOC}")
    assert not problems, "\n".join(problems)


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases: set[tuple[str, bool]] = set()
    for path in rule_test_files():
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.add((case["alertname"], bool(case.get("exp_alerts"))))
    alerts = {rule["alert"] for rule in alerting_rules()}
    missing = [
        f"{name}: no case where it {'fires' if fires else 'stays quiet'}"
        for name in sorted(alerts)
        for fires in (True, False)
        if (name, fires) not in cases
    ]
    unknown = sorted({name for name, _ in cases} - alerts)
    assert not missing, "\n".join(missing)
    assert not unknown, f"unit tests name alerts no rule defines: {unknown}"


def test_service_down_covers_exactly_the_jobs_of_the_x0_services() -> None:
    config = load_yaml(PROMETHEUS_YML)
    ports_of: dict[str, set[int]] = {}
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                ports_of.setdefault(job["job_name"], set()).add(int(target.rpartition(":")[2]))
    x0_jobs = {job for job, ports in ports_of.items() if ports & set(X0_SERVICE_PORTS)}
    assert x0_jobs == set(X0_SERVICE_PORTS.values()), ports_of
    # The stack's exporters are scraped, and never page as "service down".
    assert {"postgres", "redis"} <= set(ports_of)

    (rule,) = [r for r in alerting_rules() if r["alert"] == "X0ServiceDown"]
    (matcher,) = re.findall(r'up\{job=~"([^"]+)"\}', rule["expr"])
    assert set(matcher.split("|")) == x0_jobs


def test_prometheus_loads_exactly_the_rule_files_in_the_repo() -> None:
    config = load_yaml(PROMETHEUS_YML)
    loaded = sorted({p for pattern in config["rule_files"] for p in PROMETHEUS_DIR.glob(pattern)})
    assert loaded == rule_files()
