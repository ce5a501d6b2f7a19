"""The real Alertmanager with deploy/alertmanager/alertmanager.yml routes and inhibits.

The configuration is used as it is except for two things a test must change: the
placeholder webhook URLs point at a receiver this test runs, and the group waits are
1 s instead of tens of seconds. Alerts are posted through Alertmanager's v2 API; the
test then asserts what each receiver was sent and what was held back.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.monitoring import ALERTMANAGER_DIR, find_tool

from x0_common.testing.processes import free_port, stop_process

pytestmark = pytest.mark.integration


class _Webhooks(ThreadingHTTPServer):
    """Records every notification: (path, payload)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def alerts_at(self, path: str) -> list[dict[str, str]]:
        """The labels of every alert sent to ``path`` so far."""
        with self.lock:
            return [a["labels"] for p, body in self.received if p == path for a in body["alerts"]]


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _Webhooks

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # quiet: the test asserts on what arrived


@pytest.fixture
def webhooks() -> Iterator[_Webhooks]:
    server = _Webhooks()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _fast_copy(source: Path, target: Path, webhook_base: str) -> None:
    config = yaml.safe_load(source.read_text())
    urls = []
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            urls.append(hook["url"])
            path = "/" + hook["url"].split("//", 1)[1].split("/", 1)[1]
            hook["url"] = webhook_base + path
    assert urls, "every receiver is a webhook placeholder (see the file's head)"
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        route["group_wait"] = "1s"
        route["group_interval"] = "1s"
    target.write_text(yaml.safe_dump(config))


def _api(base: str, path: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - a local URL of this test
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def alertmanager(tmp_path: Path, webhooks: _Webhooks) -> Iterator[str]:
    config = tmp_path / "alertmanager.yml"
    _fast_copy(
        ALERTMANAGER_DIR / "alertmanager.yml", config, f"http://127.0.0.1:{webhooks.server_port}"
    )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                find_tool("alertmanager"),
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # one instance: no gossip port
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"alertmanager not ready in 30 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(process, timeout=10)


def _alert(**labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": labels,
        "annotations": {"summary": f"test {labels['alertname']}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


def test_critical_pages_warning_tickets_and_a_down_service_holds_back_its_symptoms(
    alertmanager: str, webhooks: _Webhooks
) -> None:
    down = _alert(
        alertname="X0ServiceDown", service="crypto", backend="crypto", severity="critical"
    )
    lag = _alert(
        alertname="KafkaConsumerLagGrowing", service="crypto", group="x0-crypto", severity="warning"
    )
    timeouts_crypto = _alert(
        alertname="RequestTimeouts", service="gateway", backend="crypto", severity="warning"
    )
    timeouts_rag = _alert(
        alertname="RequestTimeouts", service="gateway", backend="rag", severity="warning"
    )
    mesh = _alert(alertname="MeshNodeDown", service="telemetry", mesh_id="m1", severity="warning")
    _api(alertmanager, "/api/v2/alerts", [down, lag, timeouts_crypto, timeouts_rag, mesh])

    deadline = time.monotonic() + 20
    while True:
        paged = webhooks.alerts_at("/x0/pager")
        ticketed = webhooks.alerts_at("/x0/ticket")
        if paged and len(ticketed) >= 2:
            break
        assert time.monotonic() < deadline, f"pager got {paged}, ticket got {ticketed}"
        time.sleep(0.1)
    # Two more group intervals: whatever was going to be sent has been.
    time.sleep(2.5)
    paged, ticketed = webhooks.alerts_at("/x0/pager"), webhooks.alerts_at("/x0/ticket")

    assert {a["alertname"] for a in paged} == {"X0ServiceDown"}
    sent = {(a["alertname"], a.get("backend", "")) for a in ticketed}
    assert sent == {("RequestTimeouts", "rag"), ("MeshNodeDown", "")}, ticketed

    state = {
        (a["labels"]["alertname"], a["labels"].get("backend", "")): a["status"]
        for a in _api(alertmanager, "/api/v2/alerts")
    }
    for held in [("KafkaConsumerLagGrowing", ""), ("RequestTimeouts", "crypto")]:
        assert state[held]["state"] == "suppressed", state
        assert state[held]["inhibitedBy"], state
    assert state["RequestTimeouts", "rag"]["state"] == "active", state
