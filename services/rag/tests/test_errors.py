"""The rag error tree: stable codes, rooted in x0_common's, context kept in attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from x0_common import errors as common
from x0_rag import errors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "code", "status", "common_base"),
    [
        (errors.InvalidInput("bad"), "invalid_input", 400, common.InvalidInput),
        (errors.InvalidFilter("bad", key="lang"), "invalid_input", 400, common.InvalidInput),
        (errors.NotFound("gone"), "not_found", 404, common.NotFound),
        (errors.TooLarge("big"), "too_large", 413, common.TooLarge),
        (errors.Unavailable("down"), "unavailable", 503, common.Unavailable),
        (errors.ModelUnavailable("/m", "missing"), "unavailable", 503, common.Unavailable),
        (errors.SnapshotCorrupt("/s", "checksum"), "unavailable", 503, common.Unavailable),
    ],
)
def test_codes_and_roots(
    error: errors.RagError, code: str, status: int, common_base: type[common.X0Error]
) -> None:
    assert isinstance(error, errors.RagError)
    assert isinstance(error, common_base)
    assert (error.code, error.http_status) == (code, status)
    # The responder rebuilds the same family from the code alone.
    assert isinstance(common.error_for_code(error.code, error.message), common_base)


def test_context_is_kept() -> None:
    invalid = errors.InvalidFilter("must be a scalar", key="lang")
    assert invalid.details == {"reason": "must be a scalar", "key": "lang"}
    assert "'lang'" in invalid.message
    missing = errors.ModelUnavailable(Path("/opt/model"), "missing config.json")
    assert missing.path == Path("/opt/model")
    assert missing.details == {"path": "/opt/model", "reason": "missing config.json"}
    corrupt = errors.SnapshotCorrupt("/snap", "bad checksum")
    assert corrupt.directory == Path("/snap")
    assert "bad checksum" in str(corrupt)
