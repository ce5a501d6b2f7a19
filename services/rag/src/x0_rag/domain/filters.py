"""Metadata filters: equality and ``in`` on top-level metadata keys, joined by AND.

Grammar (the JSON a caller sends)::

    {"lang": "en", "year": 2024, "team": {"in": ["core", "infra"]}}

- ``{"key": scalar}`` matches when ``metadata[key]`` equals the scalar;
- ``{"key": {"in": [scalar, ...]}}`` matches when it equals any listed scalar;
- all clauses must match; ``{}`` (or no filter) matches everything.

Scalars are JSON scalars: string, number, boolean, null. Comparison follows JSON,
not Python: ``true`` never equals ``1`` and ``"1"`` never equals ``1``, while ``1``
equals ``1.0``. A missing key never matches (not even ``null``), and list or
object values in metadata never match a scalar. Keys are top-level names; a dot is
part of the name, not a path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

from x0_rag.errors import InvalidFilter, TooLarge

Scalar: TypeAlias = str | int | float | bool | None

MAX_CLAUSES = 32
MAX_IN_VALUES = 1024
MAX_KEY_LENGTH = 256

# A value's JSON kind: Python says True == 1 and hash(True) == hash(1), JSON does not.
_Key: TypeAlias = tuple[str, Scalar]


def _kind_key(value: object) -> _Key | None:
    """The comparison key of a JSON scalar, or None for anything else."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def _scalar(value: object, key: str) -> _Key:
    comparable = _kind_key(value)
    if comparable is None:
        raise InvalidFilter(
            f"value must be a string, number, boolean or null, not {type(value).__name__}",
            key=key,
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilter("numbers must be finite", key=key)
    return comparable


@dataclass(frozen=True, slots=True)
class Clause:
    """One condition: ``metadata[key]`` equals ``values[0]`` (``eq``) or one of them (``in``)."""

    key: str
    operator: Literal["eq", "in"]
    values: tuple[Scalar, ...]
    accepted: frozenset[_Key]

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether this clause holds for one chunk's or document's metadata."""
        if self.key not in metadata:
            return False
        comparable = _kind_key(metadata[self.key])
        return comparable is not None and comparable in self.accepted


def _clause(key: object, raw: object) -> Clause:
    if not isinstance(key, str) or not key:
        raise InvalidFilter("keys must be non-empty strings")
    if len(key) > MAX_KEY_LENGTH:
        raise TooLarge(
            f"filter key longer than {MAX_KEY_LENGTH} characters",
            details={"limit": MAX_KEY_LENGTH},
        )
    if isinstance(raw, Mapping):
        if set(raw) != {"in"}:
            raise InvalidFilter('an operator object must be exactly {"in": [...]}', key=key)
        options = raw["in"]
        if not isinstance(options, list | tuple):
            raise InvalidFilter('"in" takes a list of values', key=key)
        if len(options) > MAX_IN_VALUES:
            raise TooLarge(
                f'"in" lists at most {MAX_IN_VALUES} values',
                details={"key": key, "limit": MAX_IN_VALUES, "actual": len(options)},
            )
        accepted = frozenset(_scalar(value, key) for value in options)
        return Clause(key, "in", tuple(options), accepted)
    if isinstance(raw, list | tuple):
        raise InvalidFilter('use {"in": [...]} to match one of several values', key=key)
    accepted = frozenset({_scalar(raw, key)})
    return Clause(key, "eq", (cast(Scalar, raw),), accepted)


@dataclass(frozen=True, slots=True)
class MetadataFilter:
    """A validated filter: the AND of its clauses (no clauses: matches everything)."""

    clauses: tuple[Clause, ...] = ()

    @classmethod
    def parse(cls, raw: object) -> MetadataFilter:
        """Validate a caller's filter object; raise ``InvalidFilter`` or ``TooLarge``."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidFilter(f"a filter is a JSON object, not {type(raw).__name__}")
        if len(raw) > MAX_CLAUSES:
            raise TooLarge(
                f"a filter has at most {MAX_CLAUSES} keys",
                details={"limit": MAX_CLAUSES, "actual": len(raw)},
            )
        # Sorted so that equal filters compare (and cache) equal whatever the key order.
        clauses = [_clause(key, value) for key, value in raw.items()]
        return cls(tuple(sorted(clauses, key=lambda clause: clause.key)))

    @property
    def is_empty(self) -> bool:
        """True when the filter lets every item through."""
        return not self.clauses

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether every clause holds for ``metadata``."""
        return all(clause.matches(metadata) for clause in self.clauses)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (equality as a bare value, ``in`` as an object)."""
        return {
            clause.key: clause.values[0] if clause.operator == "eq" else {"in": list(clause.values)}
            for clause in self.clauses
        }
