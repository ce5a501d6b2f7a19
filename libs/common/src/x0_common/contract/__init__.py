"""The contract between the parts, one table per domain.

Each row (:class:`Operation`) is declared once; the gateway's routes, the workers'
handler registrations, the AsyncAPI and OpenAPI documents and the client are built
from these tables. ``docs/architecture.md`` shows how to add an operation.
"""

from __future__ import annotations

from typing import Final

from x0_common.contract.audit import Audit
from x0_common.contract.crypto import Crypto
from x0_common.contract.operation import Delivery, Http, Method, Operation, Scope, by_type
from x0_common.contract.rag import Rag
from x0_common.contract.table import Table
from x0_common.contract.telemetry import OPERATION_OF_KIND, Telemetry

# The domains with routes (the client is generated from these).
TABLES: Final[tuple[type[Table], ...]] = (Crypto, Rag, Telemetry)
# Tables of the services' own messages, with no route: on Kafka and in the AsyncAPI.
INTERNAL_TABLES: Final[tuple[type[Table], ...]] = (Audit,)
OPERATIONS: Final[tuple[Operation, ...]] = tuple(
    operation for table in (*TABLES, *INTERNAL_TABLES) for operation in table.operations()
)
BY_TYPE: Final[dict[str, Operation]] = by_type(OPERATIONS)

__all__ = [
    "BY_TYPE",
    "INTERNAL_TABLES",
    "OPERATIONS",
    "OPERATION_OF_KIND",
    "TABLES",
    "Audit",
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
