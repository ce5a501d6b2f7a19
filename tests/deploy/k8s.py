"""Rendering the kustomize overlays and checking objects against vendored CRD schemas.

kustomize is built once from the Go module proxy by deploy/k8s/kustomize.sh into the
cache the local stack keeps Kafka's jars in; a missing Go fails the tests that need it.
"""

from __future__ import annotations

import copy
import functools
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import yaml
from tests.deploy.modules import load_file

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = K8S / "overlays"
CRDS = K8S / "crds"
# Building kustomize on a fresh machine takes about a minute on two cores.
BUILD_TIMEOUT = 900


@functools.cache
def kustomize() -> Path:
    """The cached kustomize binary, built on first use."""
    run = subprocess.run(
        [str(K8S / "kustomize.sh")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert run.returncode == 0, f"deploy/k8s/kustomize.sh failed:\n{run.stderr}"
    return Path(run.stdout.strip().splitlines()[-1])


def overlays() -> list[str]:
    """The overlays under deploy/k8s/overlays."""
    return sorted(p.parent.name for p in OVERLAYS.glob("*/kustomization.yaml"))


def build(path: Path) -> subprocess.CompletedProcess[str]:
    """``kustomize build`` of a folder."""
    return subprocess.run(
        [str(kustomize()), "build", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object an overlay renders to."""
    run = build(OVERLAYS / overlay)
    assert run.returncode == 0, run.stderr
    return tuple(doc for doc in yaml.safe_load_all(run.stdout) if doc)


def objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    """An overlay's rendered objects of one kind."""
    return [doc for doc in rendered(overlay) if doc["kind"] == kind]


def named(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    """An overlay's rendered objects of one kind, by name."""
    return {doc["metadata"]["name"]: doc for doc in objects(overlay, kind)}


def workloads(overlay: str) -> dict[str, dict[str, Any]]:
    """Deployments and StatefulSets by their pods' app.kubernetes.io/name."""
    return {
        doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]: doc
        for doc in objects(overlay, "Deployment") + objects(overlay, "StatefulSet")
    }


def group_of(document: dict[str, Any]) -> str:
    """The API group of an object ("" for the core group)."""
    api: str = document["apiVersion"]
    return api.split("/", maxsplit=1)[0] if "/" in api else ""


# --- CRD schemas ---------------------------------------------------------------------------


@functools.cache
def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> the openAPIV3Schema of every vendored CRD, made strict."""
    schemas = {}
    for path in sorted(CRDS.rglob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused wherever the API server would prune or
    refuse them: an object with ``properties`` and neither ``additionalProperties`` nor
    ``x-kubernetes-preserve-unknown-fields`` takes only those properties."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    # metadata is the API server's, not the CRD's: only its type is declared here.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return schema


def crd_errors(document: dict[str, Any]) -> list[str]:
    """Why an object does not match its operator's CRD (empty when it does)."""
    group, _, version = document["apiVersion"].partition("/")
    key = (group, version, document["kind"])
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"no vendored CRD defines {key}"]
    validator = jsonschema.Draft7Validator(schema, format_checker=None)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# --- the topic generator -------------------------------------------------------------------


@functools.cache
def kafka_generator() -> ModuleType:
    """scripts/k8s_kafka.py as a module."""
    return load_file("x0_scripts_k8s_kafka", ROOT / "scripts" / "k8s_kafka.py")


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (``matchLabels``, ``matchExpressions`` with
    ``In``, the only operator the manifests use) selects ``labels``."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True
