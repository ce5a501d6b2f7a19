"""Running the service images built by ``make images`` (deploy/images/build.sh) on this
machine, with no Docker engine: ``buildah run --isolation chroot`` on the host network.

Each service runs as its image says: the image's entrypoint, environment, working
folder and user (no ``--user``: the image's non-root ``10001``), with only what a
deployment adds on top: where the stack is (``X0_*`` of the service's own PostgreSQL
role and Redis user), a port of its own, and the stack's password and certificate
folders mounted read-only at the paths those variables name (copies owned by the
image's user, as a Kubernetes Secret volume with ``fsGroup`` would be).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from mirakuru.exceptions import ProcessExitedWithError, ProcessFinishedWithError, TimeoutExpired

from x0_common.testing.processes import READY_PATH, free_port, http_executor

REPO = Path(__file__).resolve().parents[3]
SERVICES = ("gateway", "crypto", "rag", "telemetry")
IMAGE_USER = (10001, 10001)


def image_of(service: str) -> str:
    """The tag deploy/images/build.sh gives a service's image."""
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    return f"localhost/x0tta6bl4/{service}:{project['project']['version']}"


def buildah(*arguments: str) -> str:
    """Run buildah; its stdout (an AssertionError with its stderr when it fails)."""
    run = subprocess.run(
        ["buildah", *arguments], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, f"buildah {' '.join(arguments)}: {run.stderr.strip()}"
    return run.stdout


def image_config(image: str) -> dict[str, Any]:
    """The image's Docker configuration (Entrypoint, Cmd, Env, User, Labels, Healthcheck)."""
    inspected = json.loads(buildah("inspect", "--type", "image", image))
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config


def owned_copy(folder: Path, into: Path) -> Path:
    """A copy of ``folder`` that only the image's user reads (files 0400, folders 0500)."""
    copy = into / folder.name
    shutil.copytree(folder, copy)
    for path in [copy, *copy.rglob("*")]:
        os.chown(path, *IMAGE_USER)
        path.chmod(0o500 if path.is_dir() else 0o400)
    return copy


@dataclass(frozen=True)
class ImageService:
    """A service running from its image in a buildah working container."""

    name: str
    image: str
    container: str
    port: int
    log: Path
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service_processes(self) -> list[psutil.Process]:
        """The processes under ``buildah run`` that run the image's Python."""
        return [
            child
            for child in psutil.Process(self.pid).children(recursive=True)
            if child.name().startswith("python")
        ]

    def run(
        self, *command: str, environment: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        """Another command in the same container (as the image's user), e.g. its probe."""
        return subprocess.run(
            [*run_prefix(environment, {}), self.container, "--", *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def run_prefix(environment: Mapping[str, str], mounts: Mapping[Path, Path]) -> list[str]:
    """``buildah run`` with chroot isolation on the host network, the variables and the
    read-only bind mounts (host copy -> path inside)."""
    prefix = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
    for name, value in environment.items():
        prefix += ["--env", f"{name}={value}"]
    for source, target in mounts.items():
        prefix += ["--volume", f"{source}:{target}:ro"]
    return prefix


@contextmanager
def image_service(
    service: str,
    *,
    environment: Mapping[str, str],
    folders: list[Path],
    scratch: Path,
    timeout: float = 300.0,
) -> Iterator[tuple[ImageService, dict[str, str]]]:
    """Run ``service``'s image until its ``/health/ready`` answers 200; yields it and the
    variables it got. ``folders`` (the stack's credentials, identities) are mounted as
    copies the image's user owns, at their own paths. Removes the container on exit."""
    image = image_of(service)
    config = image_config(image)
    port = free_port()
    variables = {
        **environment,
        f"X0_{service.upper()}_PORT": str(port),
        # Loopback: on the host network, 0.0.0.0 (the image's) would reach beyond it.
        f"X0_{service.upper()}_HOST": "127.0.0.1",
    }
    if service == "gateway":
        variables |= {"X0_GATEWAY_METRICS_PORT": str(free_port())}
        variables |= {"X0_GATEWAY_METRICS_HOST": "127.0.0.1"}
    copies = scratch / f"{service}-secrets"
    copies.mkdir()
    mounts = {owned_copy(folder, copies): folder for folder in folders}
    name = f"x0-test-{service}-{uuid.uuid4().hex[:8]}"
    container = buildah("from", "--pull-never", "--name", name, image).strip()
    command = [
        *run_prefix(variables, mounts),
        container,
        "--",
        *(config.get("Entrypoint") or []),
        *(config.get("Cmd") or []),
    ]
    log = scratch / f"{service}.log"
    try:
        with log.open("a") as output:
            executor = http_executor(
                command,
                ready_url=f"http://127.0.0.1:{port}{READY_PATH}",
                output=output,
                timeout=timeout,
            )
            try:
                executor.start()
            except (ProcessExitedWithError, TimeoutExpired) as error:
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"{image} did not become ready: {error}\n{tail}") from None
            assert executor.process is not None
            try:
                yield (
                    ImageService(service, image, container, port, log, executor.process.pid),
                    variables,
                )
            finally:
                # buildah run ends with the signal's status when SIGTERM stops it (the
                # service's own drain is tests/drain's subject, not this one's).
                with contextlib.suppress(ProcessFinishedWithError):
                    executor.stop()
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
