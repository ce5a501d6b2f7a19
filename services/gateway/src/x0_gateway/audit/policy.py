"""Which operations are audited, whether they fail closed, and what each one names.

Audited: every row whose scope starts with ``keys:`` (managed keys: lifecycle, use,
export, backup, the mesh operations on nodes' keys), the collection create and
delete rows, and every admin route (tenants, API keys, the audit log itself). The
rows and the admin writes get an *attempt* record before they run, and are refused
with 503 when Kafka does not take it (fail closed); listings and audit reads get one
outcome record, so that an audit read still works while Kafka is away.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from x0_common.contract import Operation, Rag
from x0_common.events.audit import HMAC_PREFIX, ResourceType

_COLLECTION_ROWS: Final = frozenset({Rag.COLLECTION_CREATE.name, Rag.COLLECTION_DELETE.name})
# Request fields that name the resource, in order of preference.
RESOURCE_FIELDS: Final = ("name", "key_name", "responder_key", "initiator_key", "key_id")
# Names callers choose (they may mean something): stored as HMAC digests.
HIDDEN_TYPES: Final[frozenset[ResourceType]] = frozenset({"key", "collection"})


def audited(operation: Operation) -> bool:
    """True for the contract rows that are audited (each fails closed)."""
    return operation.scope.startswith("keys:") or operation.name in _COLLECTION_ROWS


def resource_type(operation: Operation) -> ResourceType | None:
    """What an audited row's resource is."""
    if operation.scope.startswith("keys:"):
        return "key"
    if operation.name in _COLLECTION_ROWS:
        return "collection"
    return None


def named_resource(operation: Operation, arguments: Mapping[str, Any]) -> str | None:
    """The resource an endpoint's arguments name: a path parameter, else the first
    naming field of the body (or query) model; None when nothing names one."""
    http = operation.http
    assert http is not None
    for parameter in http.path_parameters:
        if http.field_of(parameter) in RESOURCE_FIELDS:
            return str(arguments[parameter])
    for value in arguments.values():
        if isinstance(value, BaseModel):
            for field in RESOURCE_FIELDS:
                found = getattr(value, field, None)
                if isinstance(found, str):
                    return found
    return None


def path_resource(path_params: Mapping[str, Any]) -> str | None:
    """The resource a request's path names (``{name}``, ``{key_id}``), if any."""
    for field in RESOURCE_FIELDS:
        if field in path_params:
            return str(path_params[field])
    return None


def hide(key: bytes, name: str) -> str:
    """``hmac-sha256:<hex>`` of a name: equal names give equal digests, so an operator
    who knows a name finds its records (``GET /v1/audit?resource=<name>``)."""
    return HMAC_PREFIX + hmac.new(key, name.encode(), hashlib.sha256).hexdigest()


def stored_resource(key: bytes, kind: ResourceType | None, name: str | None) -> str | None:
    """How a resource is recorded: hidden when its type is a caller's name."""
    if name is None:
        return None
    return hide(key, name) if kind in HIDDEN_TYPES else name
