"""Shared fixtures for the crypto domain tests."""

from __future__ import annotations

import pytest

from x0_crypto.domain import Registry, build_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The service's standard algorithm selection, as the worker builds it."""
    return build_registry()
