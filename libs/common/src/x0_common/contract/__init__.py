"""The contract between the parts, one table per domain.

Each row (:class:`Operation`) is declared once; the gateway's routes, the workers'
handler registrations, the AsyncAPI and OpenAPI documents and the client are built
from these tables. ``docs/architecture.md`` shows how to add an operation.
"""

from __future__ import annotations

from typing import Final

from x0_common.contract.crypto import Crypto
from x0_common.contract.operation import Delivery, Http, Method, Operation, Scope, by_type
from x0_common.contract.rag import Rag
from x0_common.contract.table import Table
from x0_common.contract.telemetry import OPERATION_OF_KIND, Telemetry

TABLES: Final[tuple[type[Table], ...]] = (Crypto, Rag, Telemetry)
OPERATIONS: Final[tuple[Operation, ...]] = tuple(
    operation for table in TABLES for operation in table.operations()
)
BY_TYPE: Final[dict[str, Operation]] = by_type(OPERATIONS)

__all__ = [
    "BY_TYPE",
    "OPERATIONS",
    "OPERATION_OF_KIND",
    "TABLES",
    "Crypto",
    "Delivery",
    "Http",
    "Method",
    "Operation",
    "Rag",
    "Scope",
    "Table",
    "Telemetry",
]
