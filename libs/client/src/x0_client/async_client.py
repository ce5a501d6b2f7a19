"""The asynchronous client: the same methods as :class:`x0_client.Client`, awaited."""

from __future__ import annotations

from types import TracebackType

import httpx

from x0_client._operations import AsyncOperations
from x0_client.errors import transport_error
from x0_client.wire import Prepared, R, read_result


class AsyncClient(AsyncOperations):
    """An asyncio client of the x0 gateway::

        async with AsyncClient() as x0:  # X0_URL, X0_API_KEY
            hits = await x0.search(collection="docs", query="partition order", k=5)

    Arguments, errors and retries are those of :class:`x0_client.Client`; ``transport``
    is an ``httpx.AsyncBaseTransport`` (``MockGateway`` is one), ``http_client`` an
    ``httpx.AsyncClient`` whose base URL, timeout and transport are used as they are.
    """

    def _new_http(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.config.url, timeout=self.config.timeout, transport=transport
        )

    async def _call(self, prepared: Prepared, result: type[R]) -> R:
        return read_result(await self._send(prepared), result)

    async def _send(self, prepared: Prepared) -> httpx.Response:
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(prepared.build(self._http))
            except httpx.TransportError as error:
                wait = policy.after_error(attempt, error, idempotent=prepared.idempotent)
                if wait is None:
                    raise transport_error(error) from error
                await policy.async_sleep(wait)
                continue
            wait = policy.after_response(attempt, response)
            if wait is None:
                return response
            await response.aclose()
            await policy.async_sleep(wait)

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
