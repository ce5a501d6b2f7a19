"""The key-encryption key is refused in production when it is the development one."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from x0_common.testing import give_secret
from x0_crypto.settings import DEVELOPMENT_KEK, CryptoSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X0_ENVIRONMENT", "production")
    monkeypatch.setenv("X0_POSTGRES__DSN", "postgresql://x0:s3cret@db:5432/x0")
    monkeypatch.setenv("X0_KAFKA__SEALING_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("as_file", [True, False])
def test_the_development_kek_is_refused_inline_or_in_a_file_padded_or_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, padded: bool, as_file: bool
) -> None:
    key = DEVELOPMENT_KEK if padded else DEVELOPMENT_KEK.rstrip("=")
    in_file = tmp_path / "kek" if as_file else None
    give_secret(monkeypatch.setenv, "X0_CRYPTO_KEK", key, in_file=in_file)
    with pytest.raises(ValueError, match="development key"):
        CryptoSettings()


@pytest.mark.usefixtures("production")
def test_a_real_kek_in_a_file_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = os.urandom(32)
    (tmp_path / "kek").write_text(base64.urlsafe_b64encode(real).decode().rstrip("="))
    monkeypatch.setenv("X0_CRYPTO_KEK_FILE", str(tmp_path / "kek"))
    assert CryptoSettings().key_encryption_key() == real
