"""docker-compose.yml against the local stack (`make up`): the same services, on the same
host ports, with the same broker settings and the same connection targets.

Compose cannot run here (no Docker engine), so drift between the two development
environments would go unnoticed; these tests read both sides' sources: stack.sh's
defaults and its generated server.properties, services.py's ports and addresses, the
services' settings defaults (what `make up` runs them with).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from tests.deploy.modules import load_file

from x0_common.settings import KafkaSettings, PostgresSettings, RedisSettings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
STACK_SH = ROOT / "deploy" / "local-stack" / "stack.sh"
SERVICES_PY = ROOT / "deploy" / "local-stack" / "services.py"
# Broker settings that name addresses or paths, which differ by nature between a
# container network and loopback.
BROKER_ADDRESSING = {
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "controller.quorum.bootstrap.servers",
    "log.dirs",
}
# Mutual TLS and the authorizer (issue 12): the local stack's broker has them; compose
# is a development environment whose broker stays on PLAINTEXT, explicitly (its header
# says so; bringing it onto mutual TLS needs a PKI and an ops init container, not done).
BROKER_SECURITY = {
    "allow.everyone.if.no.acl.found",
    "authorizer.class.name",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.principal.mapping.rules",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "super.users",
}


@functools.cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


@functools.cache
def local_services() -> ModuleType:
    """deploy/local-stack/services.py (what `make up` starts besides the stack)."""
    return load_file("x0_local_services", SERVICES_PY)


def stack_default(variable: str) -> str:
    """A stack.sh setting's default: NAME="${X0_...:-default}"."""
    found = re.search(rf'^{variable}="\$\{{X0_[A-Z_]+:-([^}}]*)\}}"$', STACK_SH.read_text(), re.M)
    assert found, f"stack.sh has no default for {variable}"
    return found.group(1)


def stack_broker_properties() -> dict[str, str]:
    """The server.properties stack.sh writes, without the lines that use its variables'
    values only (the addresses and paths)."""
    text = STACK_SH.read_text()
    body = re.search(r'cat >"\$KAFKA_PROPS" <<EOF\n(.*?)\nEOF\n', text, re.S)
    assert body, "stack.sh no longer writes server.properties in one heredoc"
    properties = {}
    for line in body.group(1).splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


def compose_broker_properties() -> dict[str, str]:
    """The broker settings of compose's kafka service (apache/kafka's KAFKA_* mapping:
    dots become underscores, upper case)."""
    env = compose()["services"]["kafka"]["environment"]
    return {
        key.removeprefix("KAFKA_").lower().replace("_", "."): str(value)
        for key, value in env.items()
        if key.startswith("KAFKA_")
    }


def published(service: str) -> dict[int, int]:
    """A compose service's published ports: container port -> host port (127.0.0.1)."""
    ports = {}
    for entry in compose()["services"][service].get("ports", []):
        host_ip, host, container = str(entry).split(":")
        assert host_ip == "127.0.0.1", f"{service} publishes beyond loopback: {entry}"
        ports[int(container)] = int(host)
    return ports


def test_compose_runs_every_process_of_the_local_stack() -> None:
    services = set(compose()["services"])
    local = {"kafka", "postgres", "redis", "prometheus", "alertmanager"}
    local |= set(local_services().PORTS)
    assert local <= services, local - services


def test_compose_publishes_what_make_up_serves_on_the_same_host_ports() -> None:
    module = local_services()
    expected = {
        "kafka": int(stack_default("KAFKA_PORT")),
        "postgres": int(stack_default("PG_PORT")),
        "redis": int(stack_default("REDIS_PORT")),
        "prometheus": int(module.PROMETHEUS_ADDRESS.rsplit(":", 1)[1]),
        "alertmanager": int(module.ALERTMANAGER_ADDRESS.rsplit(":", 1)[1]),
        "gateway": int(module.PORTS["gateway"]),
    }
    for service, port in expected.items():
        assert port in published(service).values(), (service, port, published(service))
    # Kafka answers the host with an address the host can reach: the published port.
    kafka = compose()["services"]["kafka"]["environment"]
    advertised = dict(
        item.split("://", 1) for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    listeners = dict(item.split("://", 1) for item in kafka["KAFKA_LISTENERS"].split(","))
    host_listener = next(name for name, url in advertised.items() if url.startswith("127.0.0.1:"))
    container_port = int(listeners[host_listener].rsplit(":", 1)[1])
    assert advertised[host_listener] == f"127.0.0.1:{published('kafka')[container_port]}"


def test_compose_services_listen_where_the_local_stack_runs_them() -> None:
    for service, port in local_services().PORTS.items():
        spec = compose()["services"][service]
        container_ports = {int(str(p)) for p in spec.get("expose", [])} | set(published(service))
        assert int(port) in container_ports, (service, port)


def test_compose_kafka_is_the_same_release_with_the_same_broker_settings() -> None:
    image = compose()["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{stack_default('KAFKA_VERSION')}"
    ours, theirs = stack_broker_properties(), compose_broker_properties()
    assert set(ours) >= BROKER_SECURITY, "the local broker lost a mutual-TLS or ACL setting"
    compared = set(ours) - BROKER_ADDRESSING - BROKER_SECURITY
    assert {"message.max.bytes", "auto.create.topics.enable", "num.partitions"} <= compared
    missing = sorted(compared - set(theirs))
    assert not missing, f"compose's kafka lacks the local broker's settings: {missing}"
    differ = {key: (ours[key], theirs[key]) for key in compared if ours[key] != theirs[key]}
    assert not differ, f"local stack vs compose: {differ}"


def test_compose_is_the_plaintext_development_environment_it_says_it_is() -> None:
    # PLAINTEXT only where asked for explicitly: compose's broker has no security
    # setting at all (not half of one), and every service runs as development.
    assert not BROKER_SECURITY & set(compose_broker_properties())
    protocols = compose()["services"]["kafka"]["environment"][
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"
    ]
    assert {entry.split(":")[1] for entry in protocols.split(",")} == {"PLAINTEXT"}
    assert "DEVELOPMENT environment" in COMPOSE_FILE.read_text().splitlines()[0]
    for service in local_services().PORTS:
        env = compose()["services"][service]["environment"]
        assert env["X0_ENVIRONMENT"] == "development", service
        assert not any(name.startswith("X0_TLS__") for name in env), service


def test_compose_points_the_services_where_the_local_stack_does() -> None:
    # `make up` runs the services with the settings' defaults, which point at the stack
    # on loopback; compose points them at its own service names, same ports and names.
    kafka_default = urlsplit(f"kafka://{KafkaSettings().bootstrap_servers}")
    postgres_default = urlsplit(PostgresSettings().dsn.get_secret_value())
    redis_default = urlsplit(RedisSettings().url.get_secret_value())
    for service in local_services().PORTS:
        env = compose()["services"][service]["environment"]
        kafka = urlsplit(f"kafka://{env['X0_KAFKA__BOOTSTRAP_SERVERS']}")
        assert (kafka.hostname, kafka.port) == ("kafka", kafka_default.port), service
        postgres = urlsplit(env["X0_POSTGRES__DSN"])
        assert postgres.hostname == "postgres", service
        assert (postgres.port, postgres.path) == (postgres_default.port, postgres_default.path)
        redis = urlsplit(env["X0_REDIS__URL"])
        assert redis.hostname == "redis", service
        assert (redis.port, redis.path) == (redis_default.port, redis_default.path), service


def test_compose_runs_jaeger_as_make_up_does() -> None:
    # One configuration for both (deploy/jaeger/jaeger.yaml), the UI on make up's port,
    # and the services export to the OTLP/HTTP port make up's services use.
    module = local_services()
    jaeger = compose()["services"]["jaeger"]
    assert "./deploy/jaeger/jaeger.yaml:/etc/jaeger/jaeger.yaml:ro" in jaeger["volumes"]
    assert jaeger["command"] == ["--config=/etc/jaeger/jaeger.yaml"]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")
    ui = urlsplit(module.JAEGER_UI)
    assert ui.port in published("jaeger").values()
    otlp = urlsplit(module.OTLP_ENDPOINT)
    for service in module.PORTS:
        env = compose()["services"][service]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger:{otlp.port}", service
    assert str(otlp.port) in jaeger["expose"]
