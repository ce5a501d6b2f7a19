"""HTTP routes: every contract row with a route, plus health.

Rows forward by default (:mod:`x0_gateway.routing`); the modules here hold the
endpoints of rows that do more at the edge, one module per area.
"""

from fastapi import APIRouter

from x0_common.contract import OPERATIONS, Operation
from x0_gateway.routes import rag, telemetry
from x0_gateway.routing import Edge, build_router

EDGES: dict[Operation, Edge] = {**rag.EDGES, **telemetry.EDGES}


def operations_router() -> APIRouter:
    """The routes of every operation of the contract."""
    return build_router(OPERATIONS, EDGES)
