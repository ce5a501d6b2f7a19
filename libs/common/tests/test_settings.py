"""Settings come from X0_* variables, nested with '__'."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from x0_common.kafka.clients import consumer_options, producer_options
from x0_common.kafka.responder import RetryPolicy
from x0_common.settings import DEVELOPMENT_SEALING_KEY, CommonSettings
from x0_common.testing import give_secret

pytestmark = pytest.mark.unit


def test_infrastructure_settings_come_from_x0_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X0_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("X0_REDIS__URL", "redis://cache:6379/2")

    settings = CommonSettings()

    assert settings.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.redis.url.get_secret_value() == "redis://cache:6379/2"
    assert "cache" not in repr(settings)  # secrets never show in logs or reprs


def test_production_refuses_the_development_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("X0_ENVIRONMENT", "production")
    # Set here: the stack's own DSN in the environment has a random password.
    monkeypatch.setenv("X0_POSTGRES__DSN", "postgresql://x0:x0@db:5432/x0")
    with pytest.raises(ValueError, match="development password"):
        CommonSettings()
    monkeypatch.setenv("X0_POSTGRES__DSN", "postgresql://x0:s3cret@db:5432/x0")
    with pytest.raises(ValueError, match="SEALING_KEY"):
        CommonSettings()
    monkeypatch.setenv("X0_KAFKA__SEALING_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    assert CommonSettings().environment == "production"


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("as_file", [True, False])
def test_production_refuses_the_development_sealing_key_however_it_comes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, padded: bool, as_file: bool
) -> None:
    monkeypatch.setenv("X0_ENVIRONMENT", "production")
    monkeypatch.setenv("X0_POSTGRES__DSN", "postgresql://x0:s3cret@db:5432/x0")
    key = DEVELOPMENT_SEALING_KEY if padded else DEVELOPMENT_SEALING_KEY.rstrip("=")
    in_file = tmp_path / "key" if as_file else None
    give_secret(monkeypatch.setenv, "X0_KAFKA__SEALING_KEY", key, in_file=in_file)
    with pytest.raises(ValueError, match="development key"):
        CommonSettings()


def test_clients_are_at_least_once_on_purpose() -> None:
    settings = CommonSettings().kafka
    producer = producer_options(settings)
    assert producer["acks"] == "all"
    assert producer["enable_idempotence"] is True
    assert consumer_options(settings)["enable_auto_commit"] is False


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    for attempt in range(1, 20):
        assert 0 <= policy.delay(attempt) <= min(1.0, 0.1 * 2**attempt)
