"""The resources handlers look up per call (they open after registration, at start-up)."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker

from x0_common.errors import InternalError
from x0_rag.adapters.store import RagStore
from x0_rag.deps import RagDeps


def resource(deps: RagDeps, name: str) -> Any:
    """``deps.resources[name]``; a wiring mistake (not a passing failure) when missing."""
    found = deps.resources.get(name)
    if found is None:
        raise InternalError(f"the rag worker has no {name!r} resource")
    return found


def store(deps: RagDeps) -> RagStore:
    """The document store on the worker's pool."""
    return RagStore(resource(deps, "pool"))


def producer(deps: RagDeps) -> KafkaBroker:
    """The broker that publishes index events and markers."""
    broker = resource(deps, "producer")
    assert isinstance(broker, KafkaBroker)
    return broker
