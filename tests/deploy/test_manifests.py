"""The deployment manifests, checked offline: schemas, and agreement with the code.

docker-compose.yml is validated against the compose-spec schema vendored in
deploy/compose/schema, every Kubernetes manifest of the kustomize base deploy/k8s/base
against the API schemas of kubernetes-validate (strict: an unknown field fails); the
rendered overlays are checked in test_k8s_overlays.py. The rest are consistency checks
that a schema cannot make: ports and X0_* names against the services' pydantic settings
classes, probe paths against the routes the services really serve, the compose
Prometheus configuration against deploy/prometheus/prometheus.yml, the Grafana mounts
against its provisioning files, the Dockerfile against the uv workspace.

No Docker engine or cluster is needed (or used). What these tests cannot see needs
one: an image building, its containers starting, a cluster admitting the objects.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib
import json
import os
import pkgutil
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from pydantic import BaseModel
from pydantic_settings import BaseSettings
from tests.deploy.monitoring import run_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ENTRYPOINT_SCRIPT = ROOT / "deploy" / "docker" / "x0-service"
HEALTHCHECK_SCRIPT = ROOT / "deploy" / "docker" / "x0-healthcheck"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s" / "base"
K8S_README = ROOT / "deploy" / "k8s" / "README.md"
COMPOSE_SCHEMA = ROOT / "deploy" / "compose" / "schema" / "compose-spec.json"
PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
COMPOSE_PROMETHEUS_YML = ROOT / "deploy" / "compose" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"

# The oldest Kubernetes still commonly run, and the newest kubernetes-validate ships:
# the manifests must use neither a removed nor a brand-new API.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
LIVE, READY = "/health/live", "/health/ready"
# Grafana's provisioning folder unless GF_PATHS_PROVISIONING says otherwise.
GRAFANA_DEFAULT_PROVISIONING = "/etc/grafana/provisioning"
# The Secret's name, not a secret.
SECRET_NAME = "x0-secrets"  # noqa: S105
SECRET_KEYS = {
    "postgres-dsn",
    "redis-url",
    "crypto-kek",
    "kafka-sealing-key",
    "gateway-api-key-pepper",
    "gateway-audit-hmac-key",
}
# What an operator's Secret might hold (never the development values).
SECRET_STAND_INS = {
    "postgres-dsn": "postgresql://x0:s3cret@db.example.internal:5432/x0",
    "redis-url": "redis://:s3cret@cache.example.internal:6379/0",
}


# --- the workspace and the services' settings -----------------------------------------


@functools.cache
def workspace_services() -> tuple[str, ...]:
    """The x0 services: workspace members under services/ whose project is x0-<name>."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for member in sorted(ROOT.glob(pattern)):
            project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
            if member.parent.name == "services":
                assert project["name"] == f"x0-{member.name}", member
                names.append(member.name)
    assert names, "the workspace has no services/* members"
    return tuple(names)


def settings_class(service: str) -> type[BaseSettings]:
    """The service's settings class: x0_<service>.settings.<Service>Settings."""
    module = importlib.import_module(f"x0_{service}.settings")
    cls: type[BaseSettings] = getattr(module, f"{service.capitalize()}Settings")
    return cls


def _env_names(cls: type[BaseModel], prefix: str, delimiter: str) -> set[str]:
    names = set()
    for name, info in cls.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            # A nested settings class reads the environment itself, with its own prefix.
            names |= settings_env_names(kind)
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= _env_names(kind, f"{prefix}{name}{delimiter}", delimiter)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    """Every variable a settings class reads: prefix + field, nested with the delimiter."""
    config = cls.model_config
    delimiter = config.get("env_nested_delimiter")
    assert delimiter, f"{cls.__name__} has no nested delimiter"
    assert not config.get("case_sensitive"), cls
    return _env_names(cls, config.get("env_prefix", ""), delimiter)


def default_port(service: str) -> int:
    """The port the service's settings default to."""
    port = settings_class(service).model_fields["port"].default
    assert isinstance(port, int)
    return port


def scrape_port(service: str) -> int:
    """Where Prometheus scrapes the service: its own metrics port where it has one (the
    gateway keeps /metrics off its API), else its HTTP port."""
    field = settings_class(service).model_fields.get("metrics_port")
    port = default_port(service) if field is None else field.default
    assert isinstance(port, int)
    return port


def container_ports(service: str) -> set[int]:
    """Every port the service listens on by default."""
    return {default_port(service), scrape_port(service)}


def _pattern(globbed: str) -> re.Pattern[str]:
    """A Docker/Go style path pattern: * and ? stay within one path segment, ** crosses."""
    out = ""
    i = 0
    while i < len(globbed):
        if globbed.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif globbed.startswith("**", i):
            out, i = out + ".*", i + 2
        elif globbed[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif globbed[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(globbed[i]), i + 1
    return re.compile(out + r"\Z")


# --- the files -------------------------------------------------------------------------


@functools.cache
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose reads it (YAML merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment, whichever of the two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def compose_x0_services() -> dict[str, dict[str, Any]]:
    """Compose services built from deploy/docker/Dockerfile, by their SERVICE build arg."""
    found = {}
    for name, service in compose()["services"].items():
        build = service.get("build")
        if isinstance(build, dict) and build.get("dockerfile") == "deploy/docker/Dockerfile":
            assert (ROOT / build["context"]).resolve() == ROOT, name
            found[build["args"]["SERVICE"]] = service | {"name": name}
    return found


def compose_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A compose service's bind mounts: container path -> host path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def host_path(mounts: dict[str, Path], container_path: str) -> Path | None:
    """Where a container path of a service lies on the host, through its bind mounts."""
    path = PurePosixPath(container_path)
    for target in sorted(mounts, key=len, reverse=True):
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return mounts[target] / path.relative_to(target)
    return None


def compose_container_ports(service: dict[str, Any]) -> set[int]:
    """The container ports a compose service exposes or publishes."""
    ports = {int(str(port).split("/")[0]) for port in service.get("expose", [])}
    for port in service.get("ports", []):
        ports.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def command_flag(service: dict[str, Any], flag: str) -> str | None:
    """The value of a --flag=value in a compose service's command."""
    for argument in service.get("command", []):
        if argument.startswith(f"{flag}="):
            return str(argument.split("=", 1)[1])
    return None


@functools.cache
def k8s_documents() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every object of every manifest the kustomization lists, with its file."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        path = K8S / resource
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return tuple(docs)


def k8s_objects(kind: str) -> list[dict[str, Any]]:
    """The manifests' objects of one kind."""
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def k8s_workloads() -> dict[str, dict[str, Any]]:
    """Deployments and StatefulSets, by their pods' app.kubernetes.io/name label."""
    found = {}
    for doc in k8s_objects("Deployment") + k8s_objects("StatefulSet"):
        name = doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        assert name not in found, f"two workloads label their pods {name}"
        found[name] = doc
    return found


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    """A workload's one container."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    container: dict[str, Any] = containers[0]
    return container


def k8s_environment(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the kubelet builds it: ConfigMaps resolved, secrets
    and field references replaced by stand-ins (neither is in the repository)."""
    config_maps = {doc["metadata"]["name"]: doc["data"] for doc in k8s_objects("ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= config_maps[source["configMapRef"]["name"]]
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable["valueFrom"]:
            key = variable["valueFrom"]["secretKeyRef"]["key"]
            env[variable["name"]] = SECRET_STAND_INS[key]
        else:
            env[variable["name"]] = "pod-0"
    return env


@dataclass
class Dockerfile:
    """The instructions of a Dockerfile: continuations joined, heredoc bodies kept aside."""

    instructions: list[tuple[str, str]] = field(default_factory=list)
    heredocs: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        parsed = cls()
        lines = iter(text.splitlines())
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            logical = line
            while logical.endswith("\\"):
                following = next(lines)
                if not following.lstrip().startswith("#"):
                    logical = logical[:-1] + " " + following.strip()
            keyword, _, rest = logical.strip().partition(" ")
            parsed.instructions.append((keyword.upper(), rest.strip()))
            heredoc = re.search(r"<<-?'?\"?(\w+)", rest)
            if heredoc:
                body = []
                for body_line in lines:
                    if body_line.strip() == heredoc.group(1):
                        break
                    body.append(body_line)
                parsed.heredocs.append("\n".join(body))
        return parsed

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values = {}
        for rest in self.args("ENV"):
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


@functools.cache
def dockerfile() -> Dockerfile:
    return Dockerfile.parse(DOCKERFILE.read_text())


def dockerignore_includes(relative: str) -> bool:
    """Whether .dockerignore lets a path into the build context (Docker's rules: the
    last matching pattern wins; a pattern matching a parent folder matches the path)."""
    included = True
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = _pattern(line.lstrip("!").strip("/"))
        if any(pattern.match(candidate) for candidate in candidates):
            included = not exclude
    return included


# --- schemas -----------------------------------------------------------------------------


def _check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--schemafile",
            str(COMPOSE_SCHEMA),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.unit
def test_compose_file_validates_against_the_compose_spec() -> None:
    result = _check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.unit
def test_the_compose_schema_check_rejects_an_invalid_file(tmp_path: Path) -> None:
    # The check above must be able to fail: a misspelt key is refused.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  gateway:\n    image: x0\n    helthcheck: {}\n")
    result = _check_compose_schema(broken)
    assert result.returncode != 0, result.stdout
    assert "helthcheck" in result.stdout + result.stderr


def _k8s_cases() -> Iterator[Any]:
    for path, doc in k8s_documents():
        for version in K8S_VERSIONS:
            name = f"{path.name}:{doc['kind']}/{doc['metadata']['name']}@{version}"
            yield pytest.param(doc, version, id=name)


@pytest.mark.unit
@pytest.mark.parametrize(("document", "version"), list(_k8s_cases()))
def test_k8s_manifest_validates_strictly(document: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.unit
def test_strict_k8s_validation_rejects_an_unknown_field() -> None:
    workload = k8s_workloads()["crypto"]
    broken = yaml.safe_load(yaml.safe_dump(workload))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@pytest.mark.unit
def test_kustomization_lists_every_manifest_and_sets_the_namespace() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    namespaces = [doc["metadata"]["name"] for doc in k8s_objects("Namespace")]
    assert namespaces == [kustomization["namespace"]]
    # Namespaced objects take the kustomization's namespace, not one of their own.
    assert all("namespace" not in doc["metadata"] for _, doc in k8s_documents())


# --- the image ------------------------------------------------------------------------------


@pytest.mark.unit
def test_dockerfile_service_values_are_the_workspace_services() -> None:
    runs = " ".join(dockerfile().args("RUN"))
    accepted = re.search(r'case "\$\{SERVICE\}" in\s+([\w|]+)\)', runs)
    assert accepted, "the Dockerfile no longer checks SERVICE"
    assert set(accepted.group(1).split("|")) == set(workspace_services())
    assert set(compose_x0_services()) == set(workspace_services())
    for service, spec in compose_x0_services().items():
        assert spec["name"] == service, "a compose x0 service is not named after SERVICE"


@pytest.mark.unit
def test_dockerfile_installs_the_locked_service_package_into_a_venv() -> None:
    image = dockerfile()
    syncs = [run for run in image.args("RUN") if "uv sync" in run]
    assert syncs, "no uv sync"
    for run in syncs:
        assert "--frozen" in run, run
        assert "--no-dev" in run, run
        assert '--package "x0-${SERVICE}"' in run, run
    assert "--no-editable" in syncs[-1], "the last sync must install the packages as wheels"
    assert image.env()["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"
    assert image.args("ARG")[0] == "PYTHON_IMAGE=python:3.11-slim"
    # Every workspace member's pyproject is copied before the first sync: uv reads the
    # whole workspace to check the lock, so a new member must be added to the Dockerfile.
    copied = " ".join(image.args("COPY")).split()
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]:
        for member in ROOT.glob(pattern):
            assert f"{member.relative_to(ROOT)}/pyproject.toml" in copied, member


@pytest.mark.unit
def test_dockerfile_copies_only_what_dockerignore_lets_in() -> None:
    for rest in dockerfile().args("COPY"):
        sources = [s for s in rest.split()[:-1] if not s.startswith(("--", "<<"))]
        if rest.startswith("--from") or not sources:
            continue
        for source in sources:
            path = ROOT / source
            assert path.exists(), source
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            included = [p for p in files if dockerignore_includes(str(p.relative_to(ROOT)))]
            assert included, f"{source} is excluded by .dockerignore"
    # Every member's package, data files (SQL migrations) included, reaches the build.
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    for pattern in members["members"]:
        for member in ROOT.glob(pattern):
            for path in (member / "src").rglob("*"):
                if path.is_file() and "__pycache__" not in path.parts:
                    assert dockerignore_includes(str(path.relative_to(ROOT))), path
    for kept_out in (
        ".venv/bin/python",
        ".stack/kafka",
        ".git/HEAD",
        "tests/deploy",
        "services/rag/tests/test_x.py",
        "libs/common/src/x0_common/__pycache__/a.pyc",
    ):
        assert not dockerignore_includes(kept_out), kept_out


@pytest.mark.unit
def test_image_runs_as_non_root_offline_with_a_liveness_healthcheck() -> None:
    image = dockerfile()
    users = image.args("USER")
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}
    healthcheck = image.args("HEALTHCHECK")
    assert len(healthcheck) == 1
    assert healthcheck[0].endswith(f'CMD ["x0-healthcheck", "{LIVE}"]'), healthcheck
    scripts = next(copy for copy in image.args("COPY") if "x0-healthcheck" in copy).split()
    assert scripts[-1] == "/usr/local/bin/", scripts
    assert {"deploy/docker/x0-service", "deploy/docker/x0-healthcheck"} <= set(scripts)
    # No shell at run time: the entrypoint is exec form, a script python runs.
    assert image.args("ENTRYPOINT") == ['["x0-service"]']
    assert not image.args("CMD")
    for script in (ENTRYPOINT_SCRIPT, HEALTHCHECK_SCRIPT):
        assert script.read_text().startswith("#!/app/.venv/bin/python\n"), script
        assert os.access(script, os.X_OK), script
    assert 'os.execv(sys.executable, [sys.executable, "-m", module' in ENTRYPOINT_SCRIPT.read_text()
    env = image.env()
    assert env["APP_SERVICE"] == "${SERVICE}"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    for service in workspace_services():
        # Inside a container a service must listen beyond loopback.
        assert env[f"X0_{service.upper()}_HOST"] == "0.0.0.0"


def _healthcheck_script() -> str:
    return HEALTHCHECK_SCRIPT.read_text()


def _run_healthcheck(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], path: str, answer: Any
) -> tuple[int, list[str]]:
    """Run the image's probe script in-process with urlopen replaced: the exit status
    and the URLs it asked for."""
    asked: list[str] = []

    def urlopen(url: str, timeout: float) -> Any:
        asked.append(url)
        return answer(url)

    for name in [n for n in os.environ if n.startswith("X0_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(sys, "argv", ["x0-healthcheck", path])
    code = compile(_healthcheck_script(), "x0-healthcheck", "exec")
    with pytest.raises(SystemExit) as exit_info:
        exec(code, {"__name__": "__main__"})  # noqa: S102 - the image's own script, on purpose
    return int(exit_info.value.code or 0), asked


class _Answer(contextlib.AbstractContextManager[Any]):
    def __init__(self, status: int) -> None:
        self.status = status

    def __exit__(self, *_: object) -> None:
        return None


@pytest.mark.unit
@pytest.mark.parametrize("service", ["gateway", "crypto", "rag", "telemetry"])
def test_healthcheck_script_asks_the_port_the_settings_read(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ok(_url: str) -> _Answer:
        return _Answer(200)

    code, asked = _run_healthcheck(monkeypatch, {"APP_SERVICE": service}, LIVE, ok)
    assert (code, asked) == (0, [f"http://127.0.0.1:{default_port(service)}{LIVE}"])
    # A port set in the environment wins, as it does for the service itself.
    env = {"APP_SERVICE": service, f"X0_{service.upper()}_PORT": "18999"}
    code, asked = _run_healthcheck(monkeypatch, env, READY, ok)
    assert (code, asked) == (0, [f"http://127.0.0.1:18999{READY}"])


@pytest.mark.unit
def test_healthcheck_script_fails_unless_the_answer_is_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(url: str) -> Any:
        raise urllib.error.HTTPError(url, 503, "Service Unavailable", Message(), None)

    def refused(_url: str) -> Any:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    env = {"APP_SERVICE": "gateway"}
    for answer in (unavailable, refused, lambda _url: _Answer(204)):
        code, asked = _run_healthcheck(monkeypatch, env, READY, answer)
        assert code == 1, answer
        assert len(asked) == 1


# Imports one service's modules with every installed distribution outside that service's
# locked dependencies hidden, as in its image (`uv sync --package x0-<service>`). The
# development venv holds every service's dependencies at once, which hides a dependency
# that only another service brings.
_IMPORT_GUARD = """
import importlib, importlib.abc, importlib.machinery, importlib.metadata, json, re, sys
allowed, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
owners = importlib.metadata.packages_distributions()
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
class Refused(importlib.abc.Loader):
    def __init__(self, why): self.why = why
    def create_module(self, spec): raise ModuleNotFoundError(self.why, name=spec.name)
    def exec_module(self, module): raise ModuleNotFoundError(self.why, name=module.__name__)
class Guard(importlib.abc.MetaPathFinder):
    # Importing a module of another distribution fails; a probe by find_spec gets a
    # spec with no origin (torch probes optional packages that way, e.g. hypothesis
    # of the dev group), which it takes as nothing to use.
    def find_spec(self, name, path, target=None):
        dists = {norm(d) for d in owners.get(name.partition(".")[0], [])}
        if dists and not dists & set(allowed):
            why = f"{name} (from {sorted(dists)})"
            return importlib.machinery.ModuleSpec(name, Refused(why), origin=None)
        return None
sys.meta_path.insert(0, Guard())
failed = {}
for module in modules:
    try:
        importlib.import_module(module)
    except ImportError as error:
        failed[module] = str(error)
print(json.dumps(failed))
"""


def locked_closure(package: str) -> set[str]:
    """The distributions uv.lock installs for a package (extras followed, markers not:
    a superset, so a miss is real)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    by_name = {p["name"]: p for p in lock["package"]}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(package, ())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        entry = by_name[name]
        dependencies = list(entry.get("dependencies", []))
        for extra in extras:
            dependencies += entry.get("optional-dependencies", {}).get(extra, [])
        todo += [(d["name"], tuple(sorted(d.get("extra", [])))) for d in dependencies]
    return {name for name, _ in seen}


def _service_modules(service: str) -> list[str]:
    modules = ["opentelemetry.exporter.otlp.proto.http.trace_exporter"]  # OTLP is configured
    for package in (f"x0_{service}", "x0_common"):
        root = importlib.import_module(package)
        modules.append(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            # Test support and the AsyncAPI generator are development tools.
            if not info.name.startswith(("x0_common.testing", "x0_common.asyncapi")):
                modules.append(info.name)
    return modules


@pytest.mark.unit
@pytest.mark.parametrize(
    "service",
    [
        "gateway",
        "crypto",
        "rag",
        "telemetry",
    ],
)
def test_service_imports_with_only_its_locked_dependencies(service: str) -> None:
    allowed = sorted(locked_closure(f"x0-{service}"))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORT_GUARD,
            json.dumps(allowed),
            json.dumps(_service_modules(service)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ | {"OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failed, f"x0-{service}'s image would miss: {failed}"


# --- ports, probes, environment ---------------------------------------------------------------


@pytest.mark.unit
def test_services_serve_the_probe_paths_the_manifests_use() -> None:
    # Build each service's real app (nothing connects before start-up) and list its routes.
    for service in workspace_services():
        app = importlib.import_module(f"x0_{service}.app").create_app(settings_class(service)())
        if service == "gateway":
            paths = set(app.openapi()["paths"])
        else:
            paths = {route[0] for route in app.routes}
        assert {LIVE, READY} <= paths, service


@pytest.mark.unit
def test_compose_services_use_their_settings_default_ports() -> None:
    for service, spec in compose_x0_services().items():
        assert compose_container_ports(spec) == container_ports(service), service
        assert f"X0_{service.upper()}_PORT" not in compose_environment(spec), service


@pytest.mark.unit
def test_k8s_workloads_and_services_use_their_settings_default_ports() -> None:
    workloads = k8s_workloads()
    assert set(workloads) == set(workspace_services())
    services = {doc["metadata"]["name"]: doc for doc in k8s_objects("Service")}
    for service, workload in workloads.items():
        container = only_container(workload)
        expected = [{"name": "http", "containerPort": default_port(service)}]
        if scrape_port(service) != default_port(service):
            expected.append({"name": "metrics", "containerPort": scrape_port(service)})
        assert container["ports"] == expected, service
        assert f"X0_{service.upper()}_PORT" not in k8s_environment(container)
        (port,) = services[service]["spec"]["ports"]
        assert port["targetPort"] in {"http", default_port(service)}, service
        assert port["port"] == default_port(service), service


@pytest.mark.unit
def test_probes_are_live_and_ready_on_the_service_port() -> None:
    for service, workload in k8s_workloads().items():
        container = only_container(workload)
        expected = {"startupProbe": LIVE, "livenessProbe": LIVE, "readinessProbe": READY}
        for probe, path in expected.items():
            get = container[probe]["httpGet"]
            assert get["path"] == path, (service, probe)
            assert get["port"] in {"http", default_port(service)}, (service, probe)
    for service, spec in compose_x0_services().items():
        test = spec["healthcheck"]["test"]
        assert test[:2] == ["CMD", "x0-healthcheck"], service
        assert test[2] in {LIVE, READY}, service


def _check_names(where: str, env: dict[str, str], readers: set[str]) -> None:
    unknown = sorted(name for name in env if name.startswith("X0_") and name not in readers)
    assert not unknown, f"{where} sets X0_ variables no settings class reads: {unknown}"


@pytest.mark.unit
def test_every_x0_variable_is_a_settings_field_of_its_service() -> None:
    every = set().union(*(settings_env_names(settings_class(s)) for s in workspace_services()))
    assert {
        "X0_KAFKA__BOOTSTRAP_SERVERS",
        "X0_POSTGRES__DSN",
        "X0_REDIS__URL",
        "X0_GATEWAY_PORT",
        "X0_RAG_SNAPSHOT_DIR",
    } <= every, "the name derivation broke"
    # The image sets them for whichever service it runs.
    _check_names("the Dockerfile", dockerfile().env(), every)
    for service, spec in compose_x0_services().items():
        env = compose_environment(spec)
        _check_names(f"compose {service}", env, settings_env_names(settings_class(service)))
    for service, workload in k8s_workloads().items():
        env = k8s_environment(only_container(workload))
        _check_names(f"k8s {service}", env, settings_env_names(settings_class(service)))


def _image_x0_env() -> dict[str, str]:
    return {k: v for k, v in dockerfile().env().items() if k.startswith("X0_")}


def _load_settings(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in [n for n in os.environ if n.startswith(("X0_", "OTEL_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(service)()


@pytest.mark.unit
def test_the_services_accept_the_k8s_configuration_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Production refuses development secrets: this is what the pods would start with.
    for service, workload in k8s_workloads().items():
        env = _image_x0_env() | k8s_environment(only_container(workload))
        with monkeypatch.context() as patch:
            settings = _load_settings(service, env, patch)
        assert settings.common.environment == "production", service
        assert settings.port == default_port(service)
        assert settings.host == "0.0.0.0"


@pytest.mark.unit
def test_the_services_accept_the_compose_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for service, spec in compose_x0_services().items():
        env = _image_x0_env() | compose_environment(spec)
        with monkeypatch.context() as patch:
            settings = _load_settings(service, env, patch)
        # Compose carries development secrets: it must stay a development environment.
        assert settings.common.environment == "development", service
        assert settings.port == default_port(service)


@pytest.mark.unit
def test_compose_wires_the_services_to_the_compose_infrastructure() -> None:
    services = compose()["services"]
    for service, spec in compose_x0_services().items():
        env = compose_environment(spec)
        kafka = env["X0_KAFKA__BOOTSTRAP_SERVERS"]
        advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        listeners = {listener.split("://", 1)[1] for listener in advertised.split(",")}
        assert kafka in listeners, service
        dsn = urlsplit(env["X0_POSTGRES__DSN"])
        postgres = services[dsn.hostname]["environment"]
        assert (dsn.username, dsn.password, dsn.path) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            f"/{postgres['POSTGRES_DB']}",
        ), service
        assert urlsplit(env["X0_REDIS__URL"]).hostname in services, service
        otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert otlp.port in compose_container_ports(services[otlp.hostname]), service


@pytest.mark.unit
def test_compose_dependencies_and_volumes_exist() -> None:
    data = compose()
    services = data["services"]
    for name, spec in services.items():
        depends = spec.get("depends_on", {})
        for target, condition in depends.items() if isinstance(depends, dict) else []:
            assert target in services, (name, target)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in data["volumes"], (name, source)
    # rag's snapshots land on its volume.
    rag = compose_x0_services()["rag"]
    snapshot_dir = compose_environment(rag).get(
        "X0_RAG_SNAPSHOT_DIR", dockerfile().env()["X0_RAG_SNAPSHOT_DIR"]
    )
    assert any(v.split(":")[1] == snapshot_dir for v in rag["volumes"])


# --- Kubernetes specifics -------------------------------------------------------------------------


@pytest.mark.unit
def test_k8s_pods_are_labelled_by_service_and_selected_by_it() -> None:
    # deploy/prometheus/prometheus.yml: Kubernetes discovery keeps the pods whose
    # app.kubernetes.io/name is the job name; the jobs are the service names.
    prometheus_text = PROMETHEUS_YML.read_text()
    assert "app.kubernetes.io/name" in prometheus_text
    for service, workload in k8s_workloads().items():
        spec = workload["spec"]
        assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": service}
        labels = spec["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == service
    for doc in k8s_objects("Service") + k8s_objects("PodDisruptionBudget"):
        selector = doc["spec"].get("selector", {})
        selector = selector.get("matchLabels", selector)
        assert selector.get("app.kubernetes.io/name") in k8s_workloads(), doc["metadata"]


@pytest.mark.unit
def test_k8s_pods_are_locked_down_with_resources() -> None:
    for service, workload in k8s_workloads().items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, service
        assert pod["automountServiceAccountToken"] is False, service
        container = only_container(workload)
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, service
        assert security["readOnlyRootFilesystem"] is True, service
        assert security["capabilities"]["drop"] == ["ALL"], service
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (service, kind)
        # The root file system is read-only: every writable path is a volume.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, service  # noqa: S108 - the pod's own emptyDir
        volumes = {v["name"] for v in pod["volumes"]}
        volumes |= {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        assert set(mounts.values()) <= volumes, service


@pytest.mark.unit
def test_rag_snapshots_go_to_a_writable_volume() -> None:
    rag = k8s_workloads()["rag"]
    container = only_container(rag)
    snapshot_dir = k8s_environment(container)["X0_RAG_SNAPSHOT_DIR"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert snapshot_dir in mounts
    assert not mounts[snapshot_dir].get("readOnly", False)
    # A volume of each replica's own that outlives the pod (a StatefulSet's claim).
    assert rag["kind"] == "StatefulSet"
    claims = {c["metadata"]["name"] for c in rag["spec"]["volumeClaimTemplates"]}
    assert mounts[snapshot_dir]["name"] in claims


@pytest.mark.unit
def test_k8s_secrets_are_referenced_never_committed() -> None:
    assert not k8s_objects("Secret"), "Secrets are created by operators (README.md)"
    referenced = set()
    for workload in k8s_workloads().values():
        for variable in only_container(workload).get("env", []):
            secret = variable.get("valueFrom", {}).get("secretKeyRef")
            if secret:
                assert secret["name"] == SECRET_NAME
                referenced.add(secret["key"])
        for volume in workload["spec"]["template"]["spec"]["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] == SECRET_NAME
                referenced |= {item["key"] for item in volume["secret"]["items"]}
    assert referenced == SECRET_KEYS
    readme = K8S_README.read_text()
    assert all(f"`{key}`" in readme for key in SECRET_KEYS), "README must document every key"
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    assert "x0:x0@" not in text, "a development DSN in the production manifests"


@pytest.mark.unit
def test_gateway_has_a_disruption_budget_and_an_autoscaler() -> None:
    gateway = k8s_workloads()["gateway"]
    # Stable pod names keep the per-replica reply topics stable (docs/architecture.md).
    assert gateway["kind"] == "StatefulSet"
    headless = {d["metadata"]["name"]: d for d in k8s_objects("Service")}[
        gateway["spec"]["serviceName"]
    ]
    assert headless["spec"]["clusterIP"] == "None"
    # The autoscaler owns the replica count: a fixed one would fight it on each apply.
    assert "replicas" not in gateway["spec"]
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for doc in k8s_objects("PodDisruptionBudget")
    }
    assert budgets == set(workspace_services()), "every service has a disruption budget"
    (autoscaler,) = k8s_objects("HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (gateway["kind"], gateway["metadata"]["name"])
    assert autoscaler["spec"]["minReplicas"] >= 2, "a budget of one unavailable needs two"
    env = only_container(gateway)["env"]
    replica = next(v for v in env if v["name"] == "X0_GATEWAY_REPLICA_ID")
    assert replica["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


# --- Prometheus, Alertmanager, Grafana under compose ----------------------------------------------


def _x0_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        job["job_name"]: job
        for job in config["scrape_configs"]
        if job["job_name"] in workspace_services()
    }


def _rule_files(config: dict[str, Any], resolve: Any) -> list[Path]:
    files: list[Path] = []
    for pattern in config["rule_files"]:
        files += sorted(Path(p) for p in glob.glob(str(resolve(pattern))))
    return files


@pytest.mark.unit
def test_compose_prometheus_scrapes_the_same_jobs_and_loads_the_same_rules() -> None:
    main = yaml.safe_load(PROMETHEUS_YML.read_text())
    ours = yaml.safe_load(COMPOSE_PROMETHEUS_YML.read_text())
    assert ours["global"] == main["global"]
    main_jobs, our_jobs = _x0_jobs(main), _x0_jobs(ours)
    assert set(main_jobs) == set(our_jobs) == set(workspace_services())
    services = compose()["services"]
    for name, job in our_jobs.items():
        assert job.get("metrics_path") == main_jobs[name].get("metrics_path")
        (static,) = job["static_configs"]
        host, port = static["targets"][0].rsplit(":", 1)
        # The target is the compose service, on the port it serves its metrics on.
        assert (host, int(port)) == (name, scrape_port(name)), job
        assert int(port) in compose_container_ports(services[host])

    prometheus = services["prometheus"]
    config_path = command_flag(prometheus, "--config.file")
    assert config_path is not None
    mounts = compose_mounts(prometheus)
    assert host_path(mounts, config_path) == COMPOSE_PROMETHEUS_YML
    container_dir = PurePosixPath(config_path).parent
    compose_rules = _rule_files(ours, lambda p: host_path(mounts, str(container_dir / p)))
    main_rules = _rule_files(main, lambda p: PROMETHEUS_YML.parent / p)
    assert main_rules, "deploy/prometheus loads no rule files"
    assert compose_rules == main_rules

    (alerting,) = ours["alerting"]["alertmanagers"]
    host, port = alerting["static_configs"][0]["targets"][0].rsplit(":", 1)
    assert int(port) in compose_container_ports(services[host])
    alertmanager = services[host]
    assert (
        host_path(compose_mounts(alertmanager), command_flag(alertmanager, "--config.file") or "")
        == ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    )


@pytest.mark.integration
def test_promtool_accepts_the_compose_prometheus_config_with_its_mounted_rules(
    tmp_path: Path,
) -> None:
    # Lay out the files as the container sees them, then let the real promtool judge.
    prometheus = compose()["services"]["prometheus"]
    for container_path, source in compose_mounts(prometheus).items():
        target = tmp_path / container_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
    config = tmp_path / (command_flag(prometheus, "--config.file") or "").lstrip("/")
    run = run_tool("promtool", "check", "config", config)
    assert run.returncode == 0, run.describe()
    rules = len(list((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")))
    assert f"SUCCESS: {rules} rule files found" in run.output, run.describe()


@pytest.mark.unit
def test_grafana_mounts_match_its_provisioning_files() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = compose_mounts(grafana)
    provisioning = compose_environment(grafana).get(
        "GF_PATHS_PROVISIONING", GRAFANA_DEFAULT_PROVISIONING
    )
    assert host_path(mounts, provisioning) == GRAFANA / "provisioning"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    for provider in providers["providers"]:
        folder = host_path(mounts, provider["options"]["path"])
        assert folder == GRAFANA / "dashboards", provider
        assert list(folder.glob("*.json")), "the dashboards folder is empty"
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())
    services = compose()["services"]
    for source in datasources["datasources"]:
        url = urlsplit(source["url"])
        assert url.hostname in services, source["name"]
        assert url.port in compose_container_ports(services[url.hostname]), source["name"]
