"""Metadata filters: grammar, JSON comparison semantics, typed errors."""

from __future__ import annotations

import pytest

from x0_rag.domain import InvalidFilter, MetadataFilter, TooLarge
from x0_rag.domain.filters import MAX_CLAUSES, MAX_IN_VALUES

pytestmark = pytest.mark.unit

DOC = {"lang": "en", "year": 2024, "draft": False, "team": "core", "owner": None, "tags": ["a"]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, True),
        ({}, True),
        ({"lang": "en"}, True),
        ({"lang": "de"}, False),
        ({"lang": "en", "year": 2024}, True),
        ({"lang": "en", "year": 2023}, False),  # AND
        ({"year": 2024.0}, True),  # JSON numbers: 2024 == 2024.0
        ({"year": "2024"}, False),  # a string is not a number
        ({"draft": False}, True),
        ({"draft": 0}, False),  # JSON: false is not 0 (Python says it is)
        ({"owner": None}, True),
        ({"missing": None}, False),  # a missing key never matches
        ({"tags": "a"}, False),  # list values never match a scalar
        ({"team": {"in": ["core", "infra"]}}, True),
        ({"team": {"in": ["infra"]}}, False),
        ({"team": {"in": []}}, False),
        ({"year": {"in": [1999, 2024]}, "lang": "en"}, True),
        ({"draft": {"in": [0, 1]}}, False),
        ({"a.b": 1}, False),  # a dot is part of the key, not a path
    ],
)
def test_matches(raw: object, expected: bool) -> None:
    assert MetadataFilter.parse(raw).matches(DOC) is expected


def test_dotted_key_is_a_name() -> None:
    assert MetadataFilter.parse({"a.b": 1}).matches({"a.b": 1})
    assert not MetadataFilter.parse({"a.b": 1}).matches({"a": {"b": 1}})


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ([("lang", "en")], None),  # not an object
        ("lang=en", None),
        ({"": 1}, None),
        ({1: 1}, None),
        ({"lang": ["en", "de"]}, "lang"),  # a bare list: use "in"
        ({"lang": {"eq": "en"}}, "lang"),  # unknown operator
        ({"lang": {"in": ["en"], "nin": ["de"]}}, "lang"),
        ({"lang": {"in": "en"}}, "lang"),
        ({"lang": {"in": [["en"]]}}, "lang"),
        ({"lang": {"nested": 1}}, "lang"),
        ({"year": float("nan")}, "year"),
        ({"year": float("inf")}, "year"),
        ({"blob": b"bytes"}, "blob"),
    ],
)
def test_malformed_filters_raise_typed_error(raw: object, key: str | None) -> None:
    with pytest.raises(InvalidFilter) as caught:
        MetadataFilter.parse(raw)
    assert caught.value.code == "invalid_input"
    assert caught.value.key == key


def test_limits() -> None:
    with pytest.raises(TooLarge):
        MetadataFilter.parse({f"k{i}": i for i in range(MAX_CLAUSES + 1)})
    with pytest.raises(TooLarge):
        MetadataFilter.parse({"k": {"in": list(range(MAX_IN_VALUES + 1))}})
    with pytest.raises(TooLarge):
        MetadataFilter.parse({"k" * 1000: 1})
    MetadataFilter.parse({"k": {"in": list(range(MAX_IN_VALUES))}})


def test_canonical_form_and_equality() -> None:
    first = MetadataFilter.parse({"year": 2024, "team": {"in": ["core", "infra"]}})
    second = MetadataFilter.parse({"team": {"in": ["core", "infra"]}, "year": 2024})
    assert first == second
    assert first.to_json() == {"team": {"in": ["core", "infra"]}, "year": 2024}
    assert MetadataFilter.parse(first.to_json()) == first
    single_in = MetadataFilter.parse({"team": {"in": ["core"]}})
    assert single_in.to_json() == {"team": {"in": ["core"]}}
    assert MetadataFilter.parse(None).is_empty
    assert not first.is_empty
