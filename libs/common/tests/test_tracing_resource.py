"""Spans name the service that made them (the resource every exported span carries)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME

from x0_common.tracing import service_resource

pytestmark = pytest.mark.unit


def test_the_service_name_is_the_resource_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert service_resource("x0-crypto").attributes[SERVICE_NAME] == "x0-crypto"


def test_the_environment_names_the_service_over_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    resource = service_resource("x0-crypto")
    assert resource.attributes[SERVICE_NAME] == "x0-crypto"
    assert resource.attributes["deployment.environment"] == "staging"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "x0-crypto-canary")
    assert service_resource("x0-crypto").attributes[SERVICE_NAME] == "x0-crypto-canary"
