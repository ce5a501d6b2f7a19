"""Subscribers: validate -> call the domain -> reply. One module per area."""

from __future__ import annotations

from x0_common.kafka import Responder
from x0_crypto.deps import CryptoDeps
from x0_crypto.handlers import keys, mesh, stateless


def register_all(responder: Responder, deps: CryptoDeps) -> None:
    """Register every crypto operation on ``responder``."""
    stateless.register(responder, deps)
    mesh.register(responder, deps)
    keys.register(responder, deps)
