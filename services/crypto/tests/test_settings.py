"""The key-encryption key is refused in production when it is the development one."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from x0_common.testing import give_secret
from x0_crypto.domain.envelope import kek_id
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


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("as_file", [True, False])
def test_the_development_kek_is_refused_as_a_previous_kek_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, as_file: bool
) -> None:
    monkeypatch.setenv("X0_CRYPTO_KEK", _b64(os.urandom(32)))
    previous = f"{_b64(os.urandom(32))}, {DEVELOPMENT_KEK.rstrip('=')}"
    give_secret(
        monkeypatch.setenv,
        "X0_CRYPTO_PREVIOUS_KEKS",
        previous,
        in_file=tmp_path / "previous" if as_file else None,
    )
    with pytest.raises(ValueError, match=r"PREVIOUS_KEKS.* is the development key"):
        CryptoSettings()


@pytest.mark.usefixtures("production")
def test_previous_keks_from_a_file_one_a_line_make_the_keyring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    current, first, second = os.urandom(32), os.urandom(32), os.urandom(32)
    monkeypatch.setenv("X0_CRYPTO_KEK", _b64(current))
    (tmp_path / "previous").write_text(f"{_b64(first)}\n{_b64(second).rstrip('=')}\n")
    monkeypatch.setenv("X0_CRYPTO_PREVIOUS_KEKS_FILE", str(tmp_path / "previous"))
    ring = CryptoSettings().keyring()
    assert ring.current == current
    assert ring.previous == (first, second)
    assert ring.ids() == [kek_id(key).hex() for key in (current, first, second)]


def test_without_previous_keks_the_keyring_is_the_kek_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("X0_CRYPTO_PREVIOUS_KEKS", raising=False)
    monkeypatch.delenv("X0_CRYPTO_PREVIOUS_KEKS_FILE", raising=False)
    ring = CryptoSettings().keyring()
    assert ring.previous == ()
    assert ring.ids() == [kek_id(CryptoSettings().key_encryption_key()).hex()]


def test_a_malformed_previous_kek_is_named_by_position_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = _b64(os.urandom(16))
    monkeypatch.setenv("X0_CRYPTO_PREVIOUS_KEKS", f"{_b64(os.urandom(32))},{bad}")
    with pytest.raises(ValueError, match="#2 must be 32 bytes") as caught:
        CryptoSettings().keyring()
    assert bad not in str(caught.value)
