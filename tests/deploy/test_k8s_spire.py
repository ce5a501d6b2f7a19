"""SPIRE in Kubernetes: the ClusterSPIFFEID (deploy/k8s/spire) and the Workload API
component (deploy/k8s/components/spire-workload-api), rendered offline.

The component is added to each overlay in a temporary kustomization and rendered with the
real kustomize; every core object must still validate strictly, and every x0 pod must
mount the SPIFFE CSI driver's socket and name it in SPIFFE_ENDPOINT_SOCKET. The
ClusterSPIFFEID's templates, filled in for each pod's labels as spire-controller-manager
fills them (Go templates over .PodMeta), must give the IDs and CNs of the local stack.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from tests.deploy import k8s

SERVICES = ("gateway", "crypto", "rag", "telemetry")
SOCKET = "unix:///spiffe-workload-api/spire-agent.sock"
COMPONENT = k8s.K8S / "components" / "spire-workload-api"
CLUSTER_SPIFFEID = k8s.K8S / "spire" / "cluster-spiffeid.yaml"
pytestmark = [pytest.mark.unit, pytest.mark.security, pytest.mark.timeout(k8s.BUILD_TIMEOUT)]


def with_component(overlay: str, folder: Path) -> list[dict[str, Any]]:
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(k8s.OVERLAYS / overlay, folder)],
                "components": [os.path.relpath(COMPONENT, folder)],
            }
        )
    )
    run = k8s.build(folder)
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_every_pod_gets_the_workload_api(overlay: str, tmp_path: Path) -> None:
    docs = with_component(overlay, tmp_path)
    pods = {
        doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]: doc["spec"][
            "template"
        ]["spec"]
        for doc in docs
        if doc["kind"] in {"Deployment", "StatefulSet"}
    }
    assert set(SERVICES) <= set(pods)
    for name in SERVICES:
        spec = pods[name]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["spiffe-workload-api"]["csi"] == {
            "driver": "csi.spiffe.io",
            "readOnly": True,
        }
        container = spec["containers"][0]
        assert container["name"] == name
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["spiffe-workload-api"]["mountPath"] == "/spiffe-workload-api"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SPIFFE_ENDPOINT_SOCKET"] == SOCKET
    # Still valid Kubernetes objects (the CSI volume is allowed by the restricted profile).
    for doc in docs:
        if k8s.group_of(doc) in {"", "apps", "policy", "networking.k8s.io", "autoscaling"}:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def render_template(template: str, labels: dict[str, str]) -> str:
    """The one Go template form the ClusterSPIFFEID uses: index .PodMeta.Labels "key"."""
    pattern = re.compile(r'\{\{\s*index \.PodMeta\.Labels "([^"]+)"\s*\}\}')
    rendered = pattern.sub(lambda m: labels[m.group(1)], template)
    assert "{{" not in rendered, f"a template form this test does not know: {template}"
    return rendered


def test_the_cluster_spiffeid_gives_each_service_its_local_stack_id() -> None:
    (spiffe_id,) = list(yaml.safe_load_all(CLUSTER_SPIFFEID.read_text()))
    assert spiffe_id["apiVersion"] == "spire.spiffe.io/v1alpha1"
    assert spiffe_id["kind"] == "ClusterSPIFFEID"
    spec = spiffe_id["spec"]
    namespace = {"kubernetes.io/metadata.name": "x0tta6bl4"}
    assert k8s.selects(spec["namespaceSelector"], namespace)
    assert not k8s.selects(spec["namespaceSelector"], {"kubernetes.io/metadata.name": "default"})
    pods = {
        name: doc["spec"]["template"]["metadata"]["labels"]
        for name, doc in k8s.workloads("production").items()
    }
    for name in SERVICES:
        labels = pods[name]
        assert k8s.selects(spec["podSelector"], labels)
        assert render_template(spec["spiffeIDTemplate"], labels) == f"spiffe://x0.local/{name}"
        # The first DNS name becomes the subject CN, the principal the brokers map.
        assert render_template(spec["dnsNameTemplates"][0], labels) == f"{name}.x0.local"
    # A pod of anything else in the namespace gets no x0 identity.
    assert not k8s.selects(spec["podSelector"], {"app.kubernetes.io/name": "kafka-exporter"})
    assert spec["ttl"] == "1h"
