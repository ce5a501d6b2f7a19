"""x0-client: a typed client of the x0tta6bl4 gateway, and the ``x0`` command line.

::

    from x0_client import Client

    with Client() as x0:  # X0_URL (default http://127.0.0.1:8000), X0_API_KEY
        key = x0.create_key(name="node-a", type="X-Wing")
        sealed = x0.key_encrypt(name="node-a", plaintext=b"hello")
        assert x0.key_decrypt(name="node-a", ciphertext=sealed.ciphertext).plaintext == b"hello"

Every operation of :data:`x0_common.contract.OPERATIONS` with an HTTP route is a
method of :class:`Client` and :class:`AsyncClient`, named as the row is; errors are
the tree in :mod:`x0_client.errors`; :mod:`x0_client.testing` has a mock gateway.
"""

from __future__ import annotations

from x0_client.async_client import AsyncClient
from x0_client.client import Client
from x0_client.config import __version__
from x0_client.errors import (
    ConflictError,
    DeadlineExceededError,
    ForbiddenError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    ProblemError,
    RateLimitedError,
    RequestTimeoutError,
    TooLargeError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    UnexpectedResponseError,
    ValidationError,
    X0ClientError,
)
from x0_client.retry import NO_RETRY, RetryPolicy
from x0_client.settings import ClientSettings

__all__ = [
    "NO_RETRY",
    "AsyncClient",
    "Client",
    "ClientSettings",
    "ConflictError",
    "DeadlineExceededError",
    "ForbiddenError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "ProblemError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "TooLargeError",
    "TransportError",
    "UnauthorizedError",
    "UnavailableError",
    "UnexpectedResponseError",
    "ValidationError",
    "X0ClientError",
    "__version__",
]
