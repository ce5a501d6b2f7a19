"""What :class:`~x0_client.Client` and :class:`~x0_client.AsyncClient` share: the
arguments, the resolved configuration, the HTTP client they own or were given, and
each call prepared from its contract row. Only sending differs (blocking or awaited)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from x0_client.config import Config, resolve
from x0_client.retry import RetryPolicy
from x0_client.settings import ClientSettings
from x0_client.wire import Prepared, prepare, request_of
from x0_common.contract import Operation

HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class BaseClient(Generic[HttpT, TransportT]):
    """The constructor and call preparation of both clients."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: TransportT | None = None,
        http_client: HttpT | None = None,
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
        self._http: HttpT = http_client or self._new_http(transport)

    def _new_http(self, transport: TransportT | None) -> HttpT:
        """The HTTP client this client owns (base URL and timeout from the config)."""
        raise NotImplementedError

    def _prepare(
        self,
        operation: Operation,
        request: BaseModel | None,
        fields: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
    ) -> Prepared:
        """One call of ``operation``, from a request model or its keyword fields."""
        model = request_of(operation, request, fields)
        return prepare(operation, model, options, headers=self.config.headers)
