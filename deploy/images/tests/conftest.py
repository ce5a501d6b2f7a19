"""The four service images (make images) running against the test stack (make
test-images): each started from its image by buildah, the gateway last, as make up does.
A missing image fails the tests: build them with ``make images``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from deploy.images.tests.images import SERVICES, ImageService, image_of, image_service
from x0_common.testing.stack import StackEndpoints
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key


@pytest.fixture(scope="package")
def images() -> dict[str, str]:
    """Each service's image, present in buildah's storage."""
    missing = [
        image_of(service)
        for service in SERVICES
        if subprocess.run(
            ["buildah", "inspect", "--type", "image", image_of(service)],
            capture_output=True,
            check=False,
        ).returncode
        != 0
    ]
    if missing:
        pytest.fail(f"images missing (build them with `make images`): {missing}")
    return {service: image_of(service) for service in SERVICES}


@pytest.fixture(scope="package")
def running(
    images: dict[str, str], stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[ImageService, dict[str, str]]]]:
    """Every service from its image, ready, pointed at the stack as its own identity."""
    scratch = tmp_path_factory.mktemp("images")
    folders = [f for f in (stack.credentials, stack.identities) if f is not None]
    with ExitStack() as started:
        services = {
            service: started.enter_context(
                image_service(
                    service,
                    environment=stack.environment(service),
                    folders=folders,
                    scratch=scratch,
                )
            )
            # The workers first: they create the topics the gateway publishes to.
            for service in ("crypto", "rag", "telemetry", "gateway")
        }
        yield services


@pytest.fixture(scope="package")
def client(
    running: dict[str, tuple[ImageService, dict[str, str]]], stack: StackEndpoints
) -> Iterator[httpx.Client]:
    """A client of the gateway image's API with a key of every grantable scope."""
    created = asyncio.run(provision_key(stack.postgres_dsn, GatewaySettings().pepper()))
    gateway, _ = running["gateway"]
    headers = {"Authorization": f"Bearer {created.key}"}
    with httpx.Client(base_url=gateway.url, timeout=60, headers=headers) as http:
        yield http
