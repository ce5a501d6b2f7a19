"""The service images, run from what ``make images`` built, answer end to end.

Against the test stack (make test-images): the smoke path of each service through the
gateway image's HTTP API (crypto: a stateless and a managed-key request; rag: a
collection, an ingest and a search with the baked-in model; telemetry: an event stored
and queried), and what each image promises: its non-root user, its health probe, its
OCI labels, an entrypoint that needs no shell.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from tests.system.traffic import weather_collection

from deploy.images.tests.images import IMAGE_USER, SERVICES, ImageService, image_config

# Four images start one after another; rag loads its model first.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

Running = dict[str, tuple[ImageService, dict[str, str]]]


def test_crypto_through_the_images(client: httpx.Client) -> None:
    keypair = client.post("/v1/crypto/kem/keypair", json={"algorithm": "ML-KEM-768"})
    assert keypair.status_code == 200, keypair.text
    assert len(base64.urlsafe_b64decode(keypair.json()["public_key"] + "==")) == 1184
    name = f"image-{uuid.uuid4().hex[:10]}"
    created = client.post("/v1/crypto/keys", json={"name": name, "type": "ML-DSA-65"})
    assert created.status_code == 201, created.text


def test_rag_through_the_images_with_the_baked_in_model(client: httpx.Client) -> None:
    name = f"image-{uuid.uuid4().hex[:10]}"
    weather_collection(client, name)
    # A semantic match (no shared word with "weather"): the model, not the lexical index.
    found = client.post(
        f"/v1/rag/collections/{name}/search",
        json={"query": "a forecast of sunshine", "k": 1, "mode": "vector"},
    )
    assert found.status_code == 200, found.text
    assert found.json()["hits"][0]["document_id"] == "weather", found.text


def test_telemetry_through_the_images(client: httpx.Client) -> None:
    node = f"image-{uuid.uuid4().hex[:10]}"
    heartbeat = {
        "kind": "heartbeat",
        "node_id": node,
        "mesh_id": "mesh-images",
        "timestamp": datetime.now(UTC).isoformat(),
        "software_version": "1.0.0",
    }
    posted = client.post("/v1/telemetry/events", json={"events": [heartbeat]})
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while (found := client.get(f"/v1/telemetry/nodes/{node}")).status_code == 404:
        assert time.monotonic() < deadline, f"the heartbeat of {node} was never stored"
        time.sleep(0.2)
    assert found.status_code == 200, found.text
    assert found.json()["node_id"] == node


def test_the_gateway_image_refuses_a_request_without_a_key(running: Running) -> None:
    gateway, _ = running["gateway"]
    refused = httpx.post(f"{gateway.url}/v1/crypto/kem/keypair", json={"algorithm": "ML-KEM-768"})
    assert refused.status_code == 401, refused.text


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_runs_its_service_as_its_non_root_user(running: Running, service: str) -> None:
    image_service, _ = running[service]
    processes = image_service.service_processes()
    assert processes, f"no python process under {image_service.container}"
    for process in processes:
        uids, gids = process.uids(), process.gids()
        assert (uids.real, uids.effective) == (IMAGE_USER[0],) * 2, process.cmdline()
        assert (gids.real, gids.effective) == (IMAGE_USER[1],) * 2, process.cmdline()
        # The entrypoint exec'd the interpreter: no shell in between.
        assert process.cmdline()[1:3] == ["-m", f"x0_{service}"], process.cmdline()


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_probe_answers_for_its_service(running: Running, service: str) -> None:
    image_service, variables = running[service]
    config = image_config(image_service.image)
    probe = config["Healthcheck"]["Test"]
    assert probe[0] == "CMD", probe  # exec form: no shell
    port = {f"X0_{service.upper()}_PORT": variables[f"X0_{service.upper()}_PORT"]}
    live = image_service.run(*probe[1:], environment=port)
    assert live.returncode == 0, live.stderr
    ready = image_service.run(probe[1], "/health/ready", environment=port)
    assert ready.returncode == 0, ready.stderr
    # It can fail: nothing listens on a port the service does not use.
    elsewhere = image_service.run(*probe[1:], environment={f"X0_{service.upper()}_PORT": "9"})
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_carries_its_oci_labels(images: dict[str, str], service: str) -> None:
    config = image_config(images[service])
    labels = config["Labels"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.title"] == f"x0-{service}"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.version"] == images[service].rsplit(":", 1)[1]
    # The commit the image was built from (later commits may have come since).
    revision = labels["org.opencontainers.image.revision"].removesuffix("-dirty")
    assert len(revision) == 40, labels
    merged = subprocess.run(["git", "merge-base", "--is-ancestor", revision, head], check=False)
    assert merged.returncode == 0, f"{revision} is not in this checkout's history"
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["x0-service"]
