"""The synchronous client: every operation of the contract as a typed method."""

from __future__ import annotations

from types import TracebackType

import httpx

from x0_client._operations import SyncOperations
from x0_client.errors import transport_error
from x0_client.wire import Prepared, R, read_result


class Client(SyncOperations):
    """A client of the x0 gateway.

    Each operation of ``x0_common.contract.OPERATIONS`` with an HTTP route is a method
    of the same name that takes its request model (or its fields as keywords) and
    returns its result model::

        with Client() as x0:  # X0_URL, X0_API_KEY
            pair = x0.kem_keypair(algorithm="ML-KEM-768")
            sent = x0.kem_encapsulate(algorithm="ML-KEM-768", public_key=pair.public_key)

    Errors are :mod:`x0_client.errors`; 429 and 503 answers are retried by ``retry``.
    Give ``transport`` (for example :class:`x0_client.testing.MockGateway`) or a
    ready ``http_client`` (its base URL, timeout and transport are used as they are).
    """

    def _new_http(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(
            base_url=self.config.url, timeout=self.config.timeout, transport=transport
        )

    def _call(self, prepared: Prepared, result: type[R]) -> R:
        return read_result(self._send(prepared), result)

    def _send(self, prepared: Prepared) -> httpx.Response:
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.send(prepared.build(self._http))
            except httpx.TransportError as error:
                wait = policy.after_error(attempt, error, idempotent=prepared.idempotent)
                if wait is None:
                    raise transport_error(error) from error
                policy.sleep(wait)
                continue
            wait = policy.after_response(attempt, response)
            if wait is None:
                return response
            response.close()
            policy.sleep(wait)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
