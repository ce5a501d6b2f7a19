"""The kustomize overlays (deploy/k8s/overlays), rendered and checked offline.

Every overlay is rendered with the real kustomize (built once from the Go module
proxy, tests/deploy/k8s.py); every core object is validated strictly against the
Kubernetes API schemas (kubernetes-validate), every operator object (Strimzi, CNPG,
KEDA) against the CRD schema of the pinned operator version vendored in
deploy/k8s/crds. The rest are rules a schema cannot state: autoscaling within the
topics' partitions, grace periods above the services' own drain, default-deny network
policies, the restricted pod security profile, Secrets by reference only.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes_validate import utils as kubernetes_validate
from tests.deploy import k8s
from tests.deploy import test_manifests as manifests

from x0_common.kafka.broker import new_broker
from x0_common.settings import KafkaSettings
from x0_gateway.settings import GatewaySettings

SERVICES = ("gateway", "crypto", "rag", "telemetry")
WORKERS = ("crypto", "rag", "telemetry")
OPERATOR_GROUPS = {"kafka.strimzi.io", "postgresql.cnpg.io", "keda.sh"}
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Seconds a worker needs after its handlers finish: commit offsets, close the pools.
WORKER_CLOSE_SECONDS = 10
# rag also snapshots every index at shutdown; the time grows with the corpus.
RAG_SNAPSHOT_SECONDS = 60
# kustomize's first build on a fresh machine (tests/deploy/k8s.py).
pytestmark = [pytest.mark.unit, pytest.mark.timeout(k8s.BUILD_TIMEOUT)]


def test_both_overlays_exist_and_render() -> None:
    assert k8s.overlays() == ["production", "staging"]
    for overlay in k8s.overlays():
        kinds = {doc["kind"] for doc in k8s.rendered(overlay)}
        assert {"Namespace", "NetworkPolicy", "PodDisruptionBudget", "ScaledObject"} <= kinds


def test_a_broken_overlay_fails_to_render(tmp_path: Any) -> None:
    # The render check can fail: a patch of an object the base lacks is refused.
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{k8s.K8S / 'base'}]\npatches:\n  - path: p.yaml\n"
    )
    (tmp_path / "p.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nothing}\nspec: {}\n"
    )
    assert k8s.build(tmp_path).returncode != 0


def _core_cases() -> list[Any]:
    return [
        pytest.param(overlay, version, id=f"{overlay}@{version}")
        for overlay in ("staging", "production")
        for version in K8S_VERSIONS
    ]


@pytest.mark.parametrize(("overlay", "version"), _core_cases())
def test_core_objects_validate_strictly(overlay: str, version: str) -> None:
    checked = 0
    for doc in k8s.rendered(overlay):
        if k8s.group_of(doc) not in OPERATOR_GROUPS:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_operator_objects_match_their_crds(overlay: str) -> None:
    operator_objects = [d for d in k8s.rendered(overlay) if k8s.group_of(d) in OPERATOR_GROUPS]
    assert operator_objects
    for doc in operator_objects:
        errors = k8s.crd_errors(doc)
        assert not errors, (doc["kind"], doc["metadata"]["name"], errors)


def test_production_runs_kafka_and_postgres_through_their_operators() -> None:
    kinds = {doc["kind"] for doc in k8s.rendered("production")}
    expected = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "ScaledObject"}
    assert expected <= kinds
    (kafka,) = k8s.objects("production", "Kafka")
    # KRaft with node pools: Strimzi's v1 API has no ZooKeeper and no replicas here.
    (pool,) = k8s.objects("production", "KafkaNodePool")
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert all(
        listener["authentication"]["type"] == "tls"
        for listener in kafka["spec"]["kafka"]["listeners"]
    ), "no listener without mTLS"


def test_crd_check_refuses_a_misspelt_or_removed_field() -> None:
    topic = copy.deepcopy(k8s.objects("production", "KafkaTopic")[0])
    topic["spec"]["partitons"] = 3
    assert any("partitons" in e for e in k8s.crd_errors(topic))
    kafka = copy.deepcopy(k8s.objects("production", "Kafka")[0])
    kafka["spec"]["kafka"]["replicas"] = 3  # v1beta2 had it; node pools hold it now
    assert k8s.crd_errors(kafka)
    scaled = copy.deepcopy(k8s.objects("staging", "ScaledObject")[0])
    scaled["spec"]["maxReplicaCount"] = "five"
    assert k8s.crd_errors(scaled)


def test_vendored_crds_are_listed_with_their_versions() -> None:
    readme = (k8s.CRDS / "README.md").read_text()
    for folder in sorted(p for p in k8s.CRDS.iterdir() if p.is_dir()):
        assert f"`{folder.name}`" in readme, folder.name
    kinds = {kind for _, _, kind in k8s.crd_schemas()}
    expected = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "ScaledObject"}
    assert expected <= kinds


# --- scaling -----------------------------------------------------------------------------------


def _kafka_bootstrap(overlay: str) -> str:
    config = k8s.named(overlay, "ConfigMap")["x0-config"]["data"]
    bootstrap: str = config["X0_KAFKA__BOOTSTRAP_SERVERS"]
    return bootstrap


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_workers_scale_on_their_consumer_lag_within_the_partitions(overlay: str) -> None:
    generator = k8s.kafka_generator()
    partitions = {topic.name: topic.partitions for topic in generator.topics()}
    access = generator.principals()
    scaled = {
        doc["spec"]["scaleTargetRef"]["name"]: doc for doc in k8s.objects(overlay, "ScaledObject")
    }
    assert set(scaled) == set(WORKERS)
    workloads = k8s.workloads(overlay)
    for worker in WORKERS:
        workload, spec = workloads[worker], scaled[worker]["spec"]
        target = spec["scaleTargetRef"]
        assert (target["kind"], target["name"]) == (workload["kind"], workload["metadata"]["name"])
        # The autoscaler owns the count: a fixed one would fight it on every apply.
        assert "replicas" not in workload["spec"], worker
        pairs = set()
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert meta["bootstrapServers"] == _kafka_bootstrap(overlay), worker
            pairs.add((meta["consumerGroup"], meta["topic"]))
        # Every group the worker consumes in, on the topic it consumes there.
        assert {group for group, _ in pairs} == access[worker].groups, worker
        assert {topic for _, topic in pairs} <= access[worker].read, worker
        # A replica is ready only while it holds partitions of each topic: the most
        # replicas, plus a Deployment's one extra pod in a rollout, fit the fewest.
        surge = 1 if workload["kind"] == "Deployment" else 0
        fewest = min(partitions[topic] for _, topic in pairs)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], worker
        assert spec["maxReplicaCount"] + surge <= fewest, (worker, fewest)


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_gateway_scales_on_cpu_with_a_disruption_budget(overlay: str) -> None:
    (autoscaler,) = k8s.objects(overlay, "HorizontalPodAutoscaler")
    gateway = k8s.workloads(overlay)["gateway"]
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (gateway["kind"], gateway["metadata"]["name"])
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in autoscaler["spec"]["metrics"]] == ["cpu"]
    assert "replicas" not in gateway["spec"]
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for doc in k8s.objects(overlay, "PodDisruptionBudget")
    }
    assert budgets == set(SERVICES)


def test_production_is_larger_than_staging() -> None:
    staging, production = (
        k8s.objects(o, "HorizontalPodAutoscaler")[0] for o in k8s.overlays()[::-1]
    )
    assert production["spec"]["maxReplicas"] > staging["spec"]["maxReplicas"]
    staged = {
        d["spec"]["scaleTargetRef"]["name"]: d for d in k8s.objects("staging", "ScaledObject")
    }
    for doc in k8s.objects("production", "ScaledObject"):
        name = doc["spec"]["scaleTargetRef"]["name"]
        assert doc["spec"]["maxReplicaCount"] > staged[name]["spec"]["maxReplicaCount"], name


# --- pods ----------------------------------------------------------------------------------------


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = workload["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_pods_meet_the_restricted_profile_with_probes_and_spread(overlay: str) -> None:
    (namespace,) = k8s.objects(overlay, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = k8s.workloads(overlay)
    assert set(workloads) == set(SERVICES)
    for service, workload in workloads.items():
        pod = _pod(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, service
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", service
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, service
        assert security["readOnlyRootFilesystem"] is True, service
        assert security["capabilities"] == {"drop": ["ALL"]}, service
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", service
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", service
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, service
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, service


def test_grace_periods_exceed_each_services_drain() -> None:
    # The gateway: the preStop sleep, then uvicorn waits for what it holds: a body may
    # take the body timeout to arrive, and its reply the request timeout.
    settings = GatewaySettings()
    for overlay in k8s.overlays():
        gateway = k8s.workloads(overlay)["gateway"]
        (container,) = _pod(gateway)["containers"]
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        drain = (
            pre_stop + settings.connections.body_timeout_seconds + settings.request_timeout_seconds
        )
        assert _pod(gateway)["terminationGracePeriodSeconds"] > drain, (overlay, drain)
        # A worker: FastStream waits graceful_timeout for the handlers in flight, then
        # the offsets are committed and the pools closed.
        graceful = new_broker(KafkaSettings()).config.graceful_timeout
        assert graceful is not None, "without a graceful timeout the drain is unbounded"
        for worker in WORKERS:
            needed = graceful + WORKER_CLOSE_SECONDS
            needed += RAG_SNAPSHOT_SECONDS if worker == "rag" else 0
            grace = _pod(k8s.workloads(overlay)[worker])["terminationGracePeriodSeconds"]
            assert grace >= needed, (overlay, worker, grace, needed)


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_rag_snapshots_live_on_a_volume_of_each_replica(overlay: str) -> None:
    rag = k8s.workloads(overlay)["rag"]
    assert rag["kind"] == "StatefulSet"
    (claim,) = rag["spec"]["volumeClaimTemplates"]
    (container,) = _pod(rag)["containers"]
    env = {v["name"]: v for v in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["X0_RAG_SNAPSHOT_DIR"]["value"]
    # The snapshot folder is named after the stable pod name (rag-0, rag-1 ...).
    assert env["X0_RAG_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


# --- network policies ---------------------------------------------------------------------------


def _allowed_ports(overlay: str, labels: dict[str, str], direction: str) -> set[int]:
    ports: set[int] = set()
    for policy in k8s.objects(overlay, "NetworkPolicy"):
        if k8s.selects(policy["spec"]["podSelector"], labels):
            for rule in policy["spec"].get(direction, []):
                ports |= {p["port"] for p in rule.get("ports", [])}
    return ports


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_network_policies_deny_by_default_and_allow_what_each_service_needs(
    overlay: str,
) -> None:
    policies = k8s.named(overlay, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    config = k8s.named(overlay, "ConfigMap")["x0-config"]["data"]
    kafka_port = int(_kafka_bootstrap(overlay).rsplit(":", 1)[1])
    postgres_port = urlsplit(config.get("X0_POSTGRES__DSN", "postgresql://h:5432/x")).port or 5432
    for service, workload in k8s.workloads(overlay).items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        egress = _allowed_ports(overlay, labels, "egress")
        needed = {53, kafka_port, postgres_port}
        needed |= {443} if service == "gateway" else {6379}
        assert needed <= egress, (service, needed - egress)
        ingress = _allowed_ports(overlay, labels, "ingress")
        ports = {p["containerPort"] for p in _pod(workload)["containers"][0]["ports"]}
        assert ports <= ingress, (service, ports - ingress)
    # The gateway keeps no Redis: it is not let out to it.
    gateway_labels = k8s.workloads(overlay)["gateway"]["spec"]["template"]["metadata"]["labels"]
    assert 6379 not in _allowed_ports(overlay, gateway_labels, "egress")
    # Workers take connections only from Prometheus' namespace.
    for policy in policies.values():
        selector = policy["spec"]["podSelector"]
        if any(k8s.selects(selector, {"app.kubernetes.io/name": w}) for w in WORKERS):
            for rule in policy["spec"].get("ingress", []):
                (peer,) = rule["from"]
                name = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                assert name == "monitoring", policy["metadata"]["name"]


# --- secrets and database roles -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_secrets_are_only_referenced(overlay: str) -> None:
    assert not k8s.objects(overlay, "Secret"), "Secrets are created by operators"
    readme = (k8s.K8S / "README.md").read_text()
    for workload in k8s.workloads(overlay).values():
        (container,) = _pod(workload)["containers"]
        for variable in container.get("env", []):
            assert "value" in variable or "valueFrom" in variable
            if "value" in variable:
                assert "password" not in variable["value"].lower(), variable["name"]
            secret = variable.get("valueFrom", {}).get("secretKeyRef")
            if secret:
                assert f"`{secret['name']}`" in readme, secret["name"]
        for volume in _pod(workload)["volumes"]:
            if "secret" in volume:
                assert f"`{volume['secret']['secretName']}`" in readme


def test_production_services_log_in_to_postgres_as_their_own_roles() -> None:
    (cluster,) = k8s.objects("production", "Cluster")
    roles = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == set(SERVICES)
    schemas = " ".join(cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"])
    config = k8s.named("production", "ConfigMap")["x0-config"]["data"]
    dsn = urlsplit(config["X0_POSTGRES__DSN"])
    assert dsn.password is None
    assert dsn.hostname == f"{cluster['metadata']['name']}-rw"
    assert "sslmode=verify-full" in dsn.query
    for service, workload in k8s.workloads("production").items():
        assert roles[service]["login"] is True
        assert roles[service]["passwordSecret"]["name"] == f"x0-{service}-postgres"
        assert f"CREATE SCHEMA {service} AUTHORIZATION {service}" in schemas
        (container,) = _pod(workload)["containers"]
        env = {v["name"]: v for v in container["env"]}
        # The DSN comes from the ConfigMap (no password); the role's Secret gives both.
        assert "X0_POSTGRES__DSN" not in env
        for variable, key in (("PGUSER", "username"), ("PGPASSWORD", "password")):
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (f"x0-{service}-postgres", key)


# --- the services accept what the overlays give them --------------------------------------------


def _environment(overlay: str, container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the kubelet builds it, secrets as stand-ins."""
    config_maps = {name: doc["data"] for name, doc in k8s.named(overlay, "ConfigMap").items()}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= config_maps[source["configMapRef"]["name"]]
    for variable in container.get("env", []):
        source = variable.get("valueFrom", {})
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "secretKeyRef" in source:
            stand_in = manifests.SECRET_STAND_INS.get(source["secretKeyRef"]["key"], "s3cret")
            env[variable["name"]] = stand_in
        else:
            env[variable["name"]] = "pod-0"
    return env


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_the_services_accept_the_overlays_configuration_in_production(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service, workload in k8s.workloads(overlay).items():
        (container,) = _pod(workload)["containers"]
        env = _environment(overlay, container)
        readers = manifests.settings_env_names(manifests.settings_class(service))
        unknown = sorted(n for n in env if n.startswith("X0_") and n not in readers)
        assert not unknown, (overlay, service, unknown)
        with monkeypatch.context() as patch:
            settings = manifests._load_settings(service, env, patch)
        assert settings.common.environment == "production", (overlay, service)
