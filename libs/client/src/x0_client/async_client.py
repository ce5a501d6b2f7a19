"""The asynchronous client: the same methods as :class:`x0_client.Client`, awaited."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel

from x0_client._operations import AsyncOperations
from x0_client.config import Config, resolve
from x0_client.errors import transport_error
from x0_client.retry import RetryPolicy
from x0_client.settings import ClientSettings
from x0_client.wire import Prepared, R, prepare, read_result, request_of
from x0_common.contract import Operation


class AsyncClient(AsyncOperations):
    """An asyncio client of the x0 gateway::

        async with AsyncClient() as x0:  # X0_URL, X0_API_KEY
            hits = await x0.search(collection="docs", query="partition order", k=5)

    Arguments, errors and retries are those of :class:`x0_client.Client`; ``transport``
    is an ``httpx.AsyncBaseTransport`` (``MockGateway`` is one), ``http_client`` an
    ``httpx.AsyncClient`` whose base URL, timeout and transport are used as they are.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        settings: ClientSettings | None = None,
    ) -> None:
        self.config: Config = resolve(
            url=url,
            api_key=api_key,
            timeout=timeout,
            retry=retry,
            headers=headers,
            settings=settings,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            base_url=self.config.url, timeout=self.config.timeout, transport=transport
        )

    async def _call(
        self,
        operation: Operation,
        request: BaseModel | None,
        fields: Mapping[str, Any],
        result: type[R],
        options: Mapping[str, Any] | None = None,
    ) -> R:
        prepared = prepare(
            operation, request_of(operation, request, fields), options, headers=self.config.headers
        )
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
