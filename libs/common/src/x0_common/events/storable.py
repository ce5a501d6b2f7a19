"""Values PostgreSQL can store, checked where a message is validated (gateway and worker).

Without these checks a request reaches the database and fails there, as a 500 with
the value in the driver's error:

- ``integer`` columns are int4: asyncpg refuses anything outside
  ``[-2**31, 2**31 - 1]`` when it encodes the query (``value out of int32 range``).
- ``text`` and ``jsonb`` cannot hold the NUL character (U+0000), in strings or in
  object keys (``invalid byte sequence`` / ``unsupported Unicode escape sequence``).

The types below refuse such values during validation, so the gateway answers 422
and a worker answers a typed ``validation`` error, with a message that says why.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

INT4_MIN: Final = -(2**31)
INT4_MAX: Final = 2**31 - 1
NUL_ERROR: Final = "nul_character"
_NUL_MESSAGE: Final = "must not contain the NUL character (U+0000): PostgreSQL cannot store it"


def refuse_nul(value: str) -> str:
    """``value`` unchanged; a validation error when it holds U+0000."""
    if "\x00" in value:
        raise PydanticCustomError(NUL_ERROR, _NUL_MESSAGE)
    return value


def refuse_nul_in_json(value: Any) -> Any:
    """``value`` unchanged; a validation error when any string or key in it holds U+0000."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            refuse_nul(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str):
                    refuse_nul(key)
                pending.append(inner)
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return value


# An int that fits an ``integer`` (int4) column.
Int4 = Annotated[int, Field(ge=INT4_MIN, le=INT4_MAX)]
# A str that fits a ``text`` column (length limits stay with each field).
StorableText = Annotated[str, AfterValidator(refuse_nul)]
# A JSON object that fits a ``jsonb`` column.
StorableJson = Annotated[dict[str, Any], AfterValidator(refuse_nul_in_json)]
