"""Where the client connects and with what credentials: arguments, then X0_* variables."""

from __future__ import annotations

import httpx
import pytest

from x0_client import Client, ClientSettings
from x0_client.testing import MockGateway
from x0_common.events import crypto as c

pytestmark = pytest.mark.unit


def seen_request(**arguments: object) -> httpx.Request:
    gateway = MockGateway(handlers={"list_keys": lambda _: c.ListKeysResult(names=[])})
    with Client(transport=gateway, **arguments) as x0:  # type: ignore[arg-type]
        x0.list_keys()
    return gateway.calls[0].http


def test_defaults_without_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X0_URL", "X0_API_KEY", "X0_TIMEOUT_SECONDS", "X0_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    request = seen_request()
    assert str(request.url) == "http://127.0.0.1:8000/v1/crypto/keys"
    assert "authorization" not in request.headers
    assert request.headers["user-agent"].startswith("x0-client/")
    client = Client()
    assert client.config.timeout == httpx.Timeout(30.0, connect=5.0)
    assert client.config.retry.max_attempts == 3


def test_the_environment_names_the_gateway_and_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X0_URL", "https://x0.example:8443/")
    monkeypatch.setenv("X0_API_KEY", "s3cret")
    monkeypatch.setenv("X0_TIMEOUT_SECONDS", "4.5")
    monkeypatch.setenv("X0_MAX_ATTEMPTS", "5")
    request = seen_request()
    assert str(request.url) == "https://x0.example:8443/v1/crypto/keys"
    assert request.headers["authorization"] == "Bearer s3cret"
    client = Client()
    assert client.config.timeout.read == 4.5
    assert client.config.retry.max_attempts == 5
    assert "s3cret" not in repr(ClientSettings())


def test_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X0_URL", "http://from-env:1")
    monkeypatch.setenv("X0_API_KEY", "env-key")
    request = seen_request(url="http://given:2", api_key="given-key", headers={"X-Tenant": "t1"})
    assert (request.url.host, request.url.port) == ("given", 2)
    assert request.headers["authorization"] == "Bearer given-key"
    assert request.headers["x-tenant"] == "t1"
    assert Client(timeout=2.0).config.timeout == httpx.Timeout(2.0, connect=2.0)


def test_a_given_http_client_is_used_as_it_is_and_left_open() -> None:
    gateway = MockGateway(handlers={"list_keys": lambda _: c.ListKeysResult(names=["a"])})
    http = httpx.Client(transport=gateway, base_url="http://elsewhere:9")
    with Client(http_client=http) as x0:
        assert x0.list_keys().names == ["a"]
    assert gateway.calls[0].http.url.host == "elsewhere"
    assert not http.is_closed
    http.close()
